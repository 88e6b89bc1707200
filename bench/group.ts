/** A bench group: what it measures, what it needs, and where its guest comes from (see run.ts). */
export type Need = 'kernel' | 'base';

export interface FixtureImage {
  url: string;
  sha256: string;
}

export interface BenchCtx {
  image: FixtureImage;
  /** A kernel built in the bench home (its version), when there is one. */
  kernel?: string;
  /** BENCH_BASE_CLI: an older m5dev's dist/cli/main.js to compare with. */
  base?: string;
  /** Figures a group leaves for a later group's comparison (A's cold boot for D's resume). */
  figures: { uefiBoot?: number };
}

export interface BenchGroup {
  /** Its letter: BENCH_ONLY=A,D picks groups by it. */
  id: string;
  title: string;
  /** Without these the group is skipped, and the run says why. */
  needs: Need[];
  /**
   * `bench`: it works on the shared bench instance (made once, before the first such group, and
   * kept for the next); `own`: it makes its own instances (the bench instance is destroyed first).
   */
  guest: 'bench' | 'own';
  run(ctx: BenchCtx): Promise<void>;
}
