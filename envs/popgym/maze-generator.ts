/**
 * Perfect mazes by hunt-and-kill (the algorithm POPGym uses through mazelib), with entrances on opposite outer
 * walls as mazelib's `generate_entrances(start_outer=True)`.
 *
 * Layout, as mazelib's: a (2h+1)×(2w+1) grid where cells sit at odd (row, col), walls between them, and a solid
 * outer border. The entrances are border squares next to a cell, so they connect to the maze.
 */
import type { EnvRng } from '../env.js';

/** Cell codes, as POPGym's `Cell` (HIDDEN = −1 is only used for POPGym's state, not here). */
export const MazeCell = { Free: 0, Wall: 1, Start: 2, Goal: 3 } as const;

export interface Point {
  row: number;
  col: number;
}

export interface Maze {
  rows: number;
  cols: number;
  /** Row-major cell codes. */
  grid: Uint8Array;
  start: Point;
  /** The exit on the wall opposite the start (still a wall in the grid; envs mark it). */
  end: Point;
}

function randInt(rng: EnvRng, n: number): number {
  return Math.floor(rng() * n);
}

/** A random odd coordinate in [1, size). */
function randOdd(rng: EnvRng, size: number): number {
  return 1 + 2 * randInt(rng, (size - 1) / 2);
}

/**
 * A maze of `cellRows`×`cellCols` cells (grid (2·cellRows+1)×(2·cellCols+1)): random walks carve passages from a
 * random cell until stuck; the hunt then scans for an unvisited cell next to the carved region, joins it, and
 * walks again, until every cell is carved. (mazelib's random hunt gives up after h·w random probes, which can
 * leave cells uncarved and the exit unreachable; the scanning hunt always yields a spanning tree.)
 */
export function huntAndKill(cellRows: number, cellCols: number, rng: EnvRng): Uint8Array {
  const rows = 2 * cellRows + 1;
  const cols = 2 * cellCols + 1;
  const grid = new Uint8Array(rows * cols).fill(MazeCell.Wall);
  const at = (r: number, c: number) => r * cols + c;
  const steps = [
    [-2, 0],
    [2, 0],
    [0, -2],
    [0, 2],
  ];
  const neighbours = (r: number, c: number, carved: boolean): Point[] =>
    steps
      .map(([dr, dc]) => ({ row: r + dr, col: c + dc }))
      .filter(
        (p) =>
          p.row > 0 && p.row < rows - 1 && p.col > 0 && p.col < cols - 1 &&
          (grid[at(p.row, p.col)] === MazeCell.Free) === carved,
      );
  const carve = (from: Point, to: Point) => {
    grid[at(to.row, to.col)] = MazeCell.Free;
    grid[at((from.row + to.row) / 2, (from.col + to.col) / 2)] = MazeCell.Free;
  };

  let current: Point | undefined = { row: randOdd(rng, rows), col: randOdd(rng, cols) };
  grid[at(current.row, current.col)] = MazeCell.Free;
  while (current) {
    // Kill: walk to random unvisited neighbours until none is left.
    for (let options = neighbours(current.row, current.col, false); options.length; ) {
      const next = options[randInt(rng, options.length)];
      carve(current, next);
      current = next;
      options = neighbours(current.row, current.col, false);
    }
    // Hunt: the first uncarved cell (row-major) beside the carved region, joined to a random carved neighbour.
    current = undefined;
    for (let r = 1; r < rows && !current; r += 2) {
      for (let c = 1; c < cols && !current; c += 2) {
        if (grid[at(r, c)] === MazeCell.Free) continue;
        const carved = neighbours(r, c, true);
        if (!carved.length) continue;
        current = { row: r, col: c };
        carve(carved[randInt(rng, carved.length)], current);
      }
    }
  }
  return grid;
}

/** Start and end on opposite outer walls (side chosen at random), each beside a cell, as mazelib's outer entrances. */
export function outerEntrances(rows: number, cols: number, rng: EnvRng): { start: Point; end: Point } {
  switch (randInt(rng, 4)) {
    case 0: // north → south
      return { start: { row: 0, col: randOdd(rng, cols) }, end: { row: rows - 1, col: randOdd(rng, cols) } };
    case 1: // south → north
      return { start: { row: rows - 1, col: randOdd(rng, cols) }, end: { row: 0, col: randOdd(rng, cols) } };
    case 2: // west → east
      return { start: { row: randOdd(rng, rows), col: 0 }, end: { row: randOdd(rng, rows), col: cols - 1 } };
    default: // east → west
      return { start: { row: randOdd(rng, rows), col: cols - 1 }, end: { row: randOdd(rng, rows), col: 0 } };
  }
}

/** Checks `mazeDims`: two even integers >= 2. */
export function checkMazeDims(mazeDims: unknown): [number, number] {
  const ok =
    Array.isArray(mazeDims) && mazeDims.length === 2 && mazeDims.every((d) => Number.isInteger(d) && d >= 2 && d % 2 === 0);
  if (!ok)
    throw new Error(`mazeDims must be [height, width], two even integers >= 2 (POPGym uses 10, 14, 18), got ${JSON.stringify(mazeDims)}.`);
  return [mazeDims[0], mazeDims[1]];
}

/** A maze with `mazeDims` = [height, width] in blocks (even, as POPGym's: 10 gives a 11×11 grid of 5×5 cells). */
export function generateMaze(mazeDims: readonly [number, number], rng: EnvRng): Maze {
  const [h, w] = checkMazeDims(mazeDims);
  const grid = huntAndKill(h / 2, w / 2, rng);
  const rows = h + 1;
  const cols = w + 1;
  return { rows, cols, grid, ...outerEntrances(rows, cols, rng) };
}

/**
 * Breadth-first shortest path on a row-major grid over `passable` squares from `from` to `to` (both included), or
 * undefined when unreachable. For tests and scripted policies with privileged access to a map.
 */
export function shortestPath(
  rows: number,
  cols: number,
  passable: (index: number) => boolean,
  from: Point,
  to: Point,
): Point[] | undefined {
  const prev = new Int32Array(rows * cols).fill(-1);
  const start = from.row * cols + from.col;
  const goal = to.row * cols + to.col;
  prev[start] = start;
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const i = queue[head];
    if (i === goal) break;
    const r = Math.floor(i / cols);
    const c = i % cols;
    for (const [nr, nc] of [
      [r - 1, c],
      [r + 1, c],
      [r, c - 1],
      [r, c + 1],
    ]) {
      if (nr < 0 || nr >= rows || nc < 0 || nc >= cols) continue;
      const j = nr * cols + nc;
      if (prev[j] !== -1 || !passable(j)) continue;
      prev[j] = i;
      queue.push(j);
    }
  }
  if (prev[goal] === -1) return undefined;
  const path: Point[] = [];
  for (let i = goal; ; i = prev[i]) {
    path.push({ row: Math.floor(i / cols), col: i % cols });
    if (i === start) break;
  }
  return path.reverse();
}
