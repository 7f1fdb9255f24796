/** The examples one client learns in one mission: train-set indices per class. */
export interface ClassAssignment {
  classId: number;
  indices: number[];
}

/** Hands out missions: one list of class assignments per client, until it runs out. */
export interface MissionSchedule {
  /** Missions handed out so far. */
  readonly missions: number;
  /**
   * The next mission's assignment, one entry per taking-part client (the indices of the clients
   * that take part, all of them when absent), or undefined when the data is used up.
   */
  next(participants?: readonly number[]): ClassAssignment[][] | undefined;
}

/** [0, 1, …, n − 1] */
export function allClients(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
