import { assert } from '../assert.js';

/**
 * Recovery decision table. When the scan of a log stops short of a clean end (a frame that is
 * not valid, or zeros followed by something), the evidence around that place is summed up in
 * `Evidence` and exactly one labelled case below decides what it means. The table is the whole
 * policy; the scanner only gathers facts. `test/unit/recovery-plan.test.ts` checks that every
 * combination of evidence matches exactly one case.
 *
 * Why this evidence. The writer (storage/log.ts) keeps three promises that make it sufficient:
 * 1. One write is in flight at a time, and the next write starts only after the previous one's
 *    fdatasync returned. So a crash can tear only the last write, in any sector order.
 * 2. Every write that follows a durable write starts with a SEAL frame naming the last durable
 *    LSN. A valid SEAL after a damaged place proves that place was durable before the crash, so
 *    the damage is corruption, never a tear.
 * 3. A write never spans segments, and a new segment is started only after every write to the
 *    previous one is durable. So a damaged frame in a segment that has a successor is corruption.
 * The last write of a log has nothing after it to vouch for it. There, a checksum failure that
 * one flipped bit explains (format/bitflip.ts) is read as bit rot in durable data (corruption),
 * anything else as a torn write (a crash tears whole sectors, it does not flip one bit).
 *
 * Legend for the table columns:
 * - stop:        'end'  the frame header is all zeros (unwritten or zeroed space);
 *                'bad'  bytes are there but do not form the expected frame (checksum, length,
 *                       LSN or chain mismatch).
 * - next:        'none' no later segment; 'continues' the next segment starts at the expected
 *                LSN with the right chain seed; 'gap' a later segment exists but does not.
 * - sealAfter:   a valid SEAL later in the log covers the expected LSN.
 * - strayCopy:   a valid frame with exactly the expected LSN and chain sits at another offset
 *                (the signature of a misdirected write).
 * - recordsAfter: valid record frames follow later in the same segment.
 * - bitFlip:     one flipped bit explains the bad frame.
 */
export interface Evidence {
  stop: 'end' | 'bad';
  next: 'none' | 'continues' | 'gap';
  sealAfter: boolean;
  strayCopy: boolean;
  recordsAfter: boolean;
  bitFlip: boolean;
}

export type Decision =
  /** The log ends here: nothing after this point. */
  | 'end'
  /** This segment ended (it was full); scanning continues in the next segment. */
  | 'next-segment'
  /** A torn tail from the last, in-flight write: truncate (zero) from here on. */
  | 'truncate'
  /** Corruption: refuse to open, naming segment, offset and LSN. */
  | 'corrupt';

type Match<T> = T | '*';
interface Case {
  label: string;
  when: { [K in keyof Evidence]: Match<Evidence[K]> };
  decision: Decision;
  why: string;
}

export const recoveryCases: readonly Case[] = [
  {
    label: '@gap',
    when: {
      stop: '*',
      next: 'gap',
      sealAfter: '*',
      strayCopy: '*',
      recordsAfter: '*',
      bitFlip: '*',
    },
    decision: 'corrupt',
    why: 'A later segment exists but does not continue the log: records or a segment are missing.',
  },
  {
    label: '@rotated',
    when: {
      stop: 'end',
      next: 'continues',
      sealAfter: '*',
      strayCopy: '*',
      recordsAfter: false,
      bitFlip: '*',
    },
    decision: 'next-segment',
    why: 'The segment was full and the next one continues the chain: a normal rotation.',
  },
  {
    label: '@rotated-stray',
    when: {
      stop: 'end',
      next: 'continues',
      sealAfter: '*',
      strayCopy: '*',
      recordsAfter: true,
      bitFlip: '*',
    },
    decision: 'corrupt',
    why: 'Valid frames sit in the unused space of a sealed segment: a misdirected write landed.',
  },
  {
    label: '@sealed-bad',
    when: {
      stop: 'bad',
      next: 'continues',
      sealAfter: '*',
      strayCopy: '*',
      recordsAfter: '*',
      bitFlip: '*',
    },
    decision: 'corrupt',
    why: 'Damage in a segment that was rotated away from; every write to it had been durable.',
  },
  {
    label: '@clean-end',
    when: {
      stop: 'end',
      next: 'none',
      sealAfter: false,
      strayCopy: false,
      recordsAfter: false,
      bitFlip: '*',
    },
    decision: 'end',
    why: 'Zeros with nothing valid after them: the end of the log.',
  },
  {
    label: '@torn-orphans',
    when: {
      stop: 'end',
      next: 'none',
      sealAfter: false,
      strayCopy: false,
      recordsAfter: true,
      bitFlip: '*',
    },
    decision: 'truncate',
    why:
      'The start of the last write never landed but later sectors of the same write did ' +
      '(writeback order is arbitrary); nothing vouches for them, so they were never durable.',
  },
  {
    label: '@lost-write',
    when: {
      stop: 'end',
      next: 'none',
      sealAfter: true,
      strayCopy: '*',
      recordsAfter: '*',
      bitFlip: '*',
    },
    decision: 'corrupt',
    why: 'A SEAL proves this place was durable, yet it reads as zeros: a lost or misdirected write',
  },
  {
    label: '@misdirected',
    when: {
      stop: '*',
      next: 'none',
      sealAfter: false,
      strayCopy: true,
      recordsAfter: '*',
      bitFlip: '*',
    },
    decision: 'corrupt',
    why: 'The expected frame exists intact at the wrong offset: a misdirected write.',
  },
  {
    label: '@sealed-damage',
    when: {
      stop: 'bad',
      next: 'none',
      sealAfter: true,
      strayCopy: '*',
      recordsAfter: '*',
      bitFlip: '*',
    },
    decision: 'corrupt',
    why: 'A SEAL after the damage proves it was durable: a crash cannot tear durable data.',
  },
  {
    label: '@bit-rot',
    when: {
      stop: 'bad',
      next: 'none',
      sealAfter: false,
      strayCopy: false,
      recordsAfter: '*',
      bitFlip: true,
    },
    decision: 'corrupt',
    why: 'One flipped bit explains the damage: bit rot in data that may have been acknowledged.',
  },
  {
    label: '@torn',
    when: {
      stop: 'bad',
      next: 'none',
      sealAfter: false,
      strayCopy: false,
      recordsAfter: '*',
      bitFlip: false,
    },
    decision: 'truncate',
    why: 'Damage in the last write with nothing vouching for it: torn by the crash.',
  },
];

function matches<T>(pattern: Match<T>, value: T): boolean {
  return pattern === '*' || pattern === value;
}

export function matchingCases(evidence: Evidence): Case[] {
  return recoveryCases.filter((entry) =>
    (Object.keys(entry.when) as (keyof Evidence)[]).every((key) =>
      matches(entry.when[key] as Match<Evidence[typeof key]>, evidence[key]),
    ),
  );
}

/** Decides what a stop in the scan means. Exactly one case matches any evidence. */
export function decide(evidence: Evidence): { label: string; decision: Decision; why: string } {
  const found = matchingCases(evidence);
  assert(
    found.length === 1,
    `recovery table: ${found.length} cases match ${JSON.stringify(evidence)}`,
  );
  const entry = found[0];
  assert(entry !== undefined, 'one case matched');
  return { label: entry.label, decision: entry.decision, why: entry.why };
}
