/**
 * Episode statistics, summed in one place: `EpisodeStatistics` keeps the running return, length and start time of
 * N streams of episodes. RecordEpisodeStatistics (one env, N = 1) and `EpisodeTracker` (a vector env, as PPO and
 * evaluation read it) both add rewards through it, so their numbers are the same by construction.
 */

/** One finished episode's statistics, as Gymnasium's `info.episode`. */
export interface EpisodeStats {
  /** Return (sum of rewards). */
  r: number;
  /** Length in steps. */
  l: number;
  /** Wall time in seconds since the episode's reset, rounded to microseconds. */
  t: number;
}

/** Running return, length and start time of the current episode of each of N streams. */
export class EpisodeStatistics {
  readonly returns: Float64Array;
  readonly lengths: Float64Array;
  readonly startTimes: Float64Array;

  constructor(readonly size: number) {
    this.returns = new Float64Array(size);
    this.lengths = new Float64Array(size);
    this.startTimes = new Float64Array(size);
  }
  /** Starts stream i's next episode. */
  begin(i: number): void {
    this.returns[i] = 0;
    this.lengths[i] = 0;
    this.startTimes[i] = performance.now();
  }
  /** Counts one step of stream i. */
  add(i: number, reward: number): void {
    this.returns[i] += reward;
    this.lengths[i] += 1;
  }
  /** Stream i's episode so far. */
  stats(i: number): EpisodeStats {
    return {
      r: this.returns[i],
      l: this.lengths[i],
      t: Math.round((performance.now() - this.startTimes[i]) * 1e3) / 1e6,
    };
  }
}

/**
 * Episode bookkeeping over a next-step-autoreset vector env: which observations start an episode, which steps are
 * reset steps (the env ignores their action), and each episode's statistics as it finishes. Shared by training,
 * evaluation and the vector RecordEpisodeStatistics.
 */
export class EpisodeTracker {
  /** 1 where the current observation is an episode's first. */
  readonly episodeStart: Float32Array;
  /** 1 where the current observation is an episode's last, so the next step is a reset step. */
  readonly pendingReset: Uint8Array;
  readonly statistics: EpisodeStatistics;

  constructor(readonly numEnvs: number) {
    this.episodeStart = new Float32Array(numEnvs).fill(1);
    this.pendingReset = new Uint8Array(numEnvs);
    this.statistics = new EpisodeStatistics(numEnvs);
    for (let n = 0; n < numEnvs; n++) this.statistics.begin(n);
  }

  /** The running return of each stream's current episode. */
  get episodeReturn(): Float64Array {
    return this.statistics.returns;
  }
  /** The running length of each stream's current episode. */
  get episodeLength(): Float64Array {
    return this.statistics.lengths;
  }

  /** Records one vector step; returns the episodes it finished, by env. Reset steps only start the next episode. */
  observe(rewards: ArrayLike<number>, terminated: ArrayLike<boolean>, truncated: ArrayLike<boolean>): (EpisodeStats & { env: number })[] {
    const done: (EpisodeStats & { env: number })[] = [];
    for (let n = 0; n < this.numEnvs; n++) {
      if (this.pendingReset[n]) {
        this.pendingReset[n] = 0;
        this.episodeStart[n] = 1;
        this.statistics.begin(n);
        continue;
      }
      this.episodeStart[n] = 0;
      this.statistics.add(n, rewards[n]);
      if (terminated[n] || truncated[n]) {
        done.push({ env: n, ...this.statistics.stats(n) });
        this.pendingReset[n] = 1;
      }
    }
    return done;
  }
}
