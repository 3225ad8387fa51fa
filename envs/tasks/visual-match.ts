/**
 * Passive Visual Match (Hung et al. 2019; the RL task of Irie et al. 2025 via Ni et al. 2023's Memory-RL port).
 */
import { BOARD_COLS, Cell, COLOURS, parseLayout, ThreePhaseGridTask, type Interaction, type PhaseOptions } from './grid-phases.js';

/** Phase 1 (pycolab's PASSIVE_EXPLORE_GRID): the agent `@` is boxed in; one `*` becomes the cue, the rest walls. */
const CUE_ROOM = parseLayout([
  '           ',
  '    ***    ',
  '    *@*    ',
  '    ***    ',
  '           ',
  '           ',
  '           ',
]);

/** Phase 3 (pycolab's REWARD_GRID): three coloured squares `1 2 3` along the top of a room. */
const DOOR_ROOM = parseLayout([
  '###########',
  '# 1  2  3 #',
  '#         #',
  '#         #',
  '####   ####',
  '   # @ #   ',
  '   #####   ',
]);
const DOOR_SPOTS = ['1', '2', '3'].map((m) => DOOR_ROOM.marks[m][0]);

/** Paper setting (Irie et al. 2025): 15 / 750 / 15 steps. */
export const VISUAL_MATCH_PAPER_APPLE_STEPS = 750;

/**
 * Passive Visual Match: remember a colour across a long distractor phase.
 *
 * - Phase 1 (15 steps): the agent stands boxed in next to one square of the cue colour (red, green or blue, drawn
 *   uniformly; its place among the 8 neighbours is random). It cannot move (walls and the cue block it), so it
 *   only has to look: the cue is in its 5×5 view throughout.
 * - Phase 2 (applePhaseSteps, paper 750): the shared apple room, +appleReward (1) per apple.
 * - Phase 3 (15 steps): a room with a red, a green and a blue square along the top wall, in a random order each
 *   episode (so the agent must match colours, not positions). Entering the cue's colour gives +finalReward (100)
 *   and ends the episode; entering another colour ends it with no reward; otherwise it ends after 15 steps.
 * - Observation, actions and apple rules: see ThreePhaseGridTask. Renders `ansi` and `rgb_array` (88×56).
 * - No returnBounds: the apple count an optimal policy can collect has no closed form.
 */
export class PassiveVisualMatch extends ThreePhaseGridTask {
  private cueColour: number = Cell.Red;

  constructor(opts: PhaseOptions = {}) {
    super(opts, { finalReward: 100, applePhaseSteps: VISUAL_MATCH_PAPER_APPLE_STEPS });
  }

  /** The episode's cue colour code (Cell.Red/Green/Blue): privileged, for scripted policies and tests. */
  get cue(): number {
    return this.cueColour;
  }

  protected startEpisode(): void {
    this.cueColour = COLOURS[Math.floor(this.rng() * COLOURS.length)];
    this.board = CUE_ROOM.board.slice();
    const [cueSpot] = this.pick(CUE_ROOM.marks['*'], 1);
    for (const p of CUE_ROOM.marks['*']) this.board[p.row * BOARD_COLS + p.col] = p === cueSpot ? this.cueColour : Cell.Wall;
    this.agent = { ...CUE_ROOM.marks['@'][0] };
  }

  protected layoutRewardPhase(): void {
    this.board = DOOR_ROOM.board.slice();
    const order = this.pick(COLOURS, COLOURS.length);
    DOOR_SPOTS.forEach((p, i) => (this.board[p.row * BOARD_COLS + p.col] = order[i]));
    this.agent = { ...DOOR_ROOM.marks['@'][0] };
  }

  protected blocks(cell: number): boolean {
    return this.stage === 0 && cell === this.cueColour;
  }

  protected interact(cell: number): Interaction {
    const isColour = (COLOURS as readonly number[]).includes(cell);
    if (this.stage !== 2 || !isColour) return { reward: 0 };
    return { reward: cell === this.cueColour ? this.finalReward : 0, end: true };
  }
}
