/**
 * How m5dev reaches a guest: the user cloud-config creates and the container port QEMU forwards
 * to the guest's sshd. Kept apart so that `m5dev exec`'s short path loads neither the seed
 * writer nor the QEMU command line.
 */
export const GUEST_USER = 'ubuntu';
export const GUEST_SSH_FORWARD = 2222;
