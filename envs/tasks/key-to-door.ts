/** Key-to-Door (Hung et al. 2019; Ni et al. 2023's Memory-RL port of DeepMind's pycolab code). */
import { BOARD_COLS, Cell, parseLayout, ThreePhaseGridTask, type Interaction, type PhaseOptions, type Point } from './grid-phases.js';

/** Phase 1 (pycolab's EXPLORE_GRID): the key on one of the `*` spots, the agent on one of the `+` spots. */
const KEY_ROOM = parseLayout([
  '  #######  ',
  '  #*****#  ',
  '  #*****#  ',
  '  ##   ##  ',
  '  #+++++#  ',
  '  #+++++#  ',
  '  #######  ',
]);

/** Phase 3 (pycolab's REWARD_GRID_SR): a small room with the door in its top wall. */
const DOOR_ROOM = parseLayout([
  '           ',
  '   ##d##   ',
  '   #   #   ',
  '   # @ #   ',
  '   #   #   ',
  '   #####   ',
  '           ',
]);

/**
 * Key-to-Door: pick up a key, get distracted by apples, then open a door only if the key was taken.
 *
 * - Phase 1 (15 steps): a two-part room; the key lies on one of 10 squares in the top part, the agent starts on
 *   one of 10 in the bottom part (both random). Entering the key's square picks it up (no reward).
 * - Phase 2 (applePhaseSteps): the shared apple room, +appleReward (1) per apple.
 * - Phase 3 (15 steps): a small room with a door in its top wall, two steps from the agent. The door blocks an
 *   agent without the key; with the key, entering it gives +finalReward (5, Ni et al.'s setting) and ends the
 *   episode; otherwise the episode ends after 15 steps. Nothing observed says whether the key was taken.
 * - Observation, actions and apple rules: see ThreePhaseGridTask. Renders `ansi` and `rgb_array` (88×56).
 * - No returnBounds: the apple count an optimal policy can collect has no closed form.
 */
export class KeyToDoor extends ThreePhaseGridTask {
  private key = false;

  constructor(opts: PhaseOptions = {}) {
    super(opts, { finalReward: 5, applePhaseSteps: 750 });
  }

  /** Whether the agent holds the key: privileged, for scripted policies and tests. */
  get hasKey(): boolean {
    return this.key;
  }

  protected startEpisode(): void {
    this.key = false;
    this.board = KEY_ROOM.board.slice();
    const [keySpot] = this.pick(KEY_ROOM.marks['*'], 1);
    this.board[keySpot.row * BOARD_COLS + keySpot.col] = Cell.Key;
    [this.agent] = this.pick(KEY_ROOM.marks['+'], 1).map((p: Point) => ({ ...p }));
  }

  protected layoutRewardPhase(): void {
    this.board = DOOR_ROOM.board.slice();
    this.agent = { ...DOOR_ROOM.marks['@'][0] };
  }

  protected blocks(cell: number): boolean {
    return cell === Cell.Door && !this.key;
  }

  protected interact(cell: number, at: Point): Interaction {
    if (cell === Cell.Key) {
      this.key = true;
      this.board[at.row * BOARD_COLS + at.col] = Cell.Empty;
      return { reward: 0 };
    }
    if (cell === Cell.Door && this.key) {
      this.key = false;
      return { reward: this.finalReward, end: true };
    }
    return { reward: 0 };
  }
}
