/** The toolchain image's name: its repository, and a tag from the hash of its build context (lock included). */
export const TOOLCHAIN_REPO = 'm5dev/toolchain';

export function toolchainTag(hash: string, repo = TOOLCHAIN_REPO): string {
  return `${repo}:${hash.slice(0, 16)}`;
}
