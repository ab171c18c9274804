import { describe, expect, it } from 'vitest';
import { SimDisk } from '../../src/sim/disk.js';
import { Log } from '../../src/storage/log.js';
import { intent, readAll, sameBytes } from './helpers.js';

function open(disk: SimDisk, dir: string) {
  return Log.open(disk, { dir, segmentSizeBytes: 4096 });
}

describe('replica logs: frames in, byte for byte', () => {
  it('a replica appending the primary frames holds the same records', async () => {
    const disk = new SimDisk({ seed: 7 });
    const primary = await open(disk, '/p');
    const replica = await open(disk, '/r');
    const shipped: { firstLsn: number; frames: Uint8Array; offsets: readonly number[] }[] = [];
    primary.onAppend((firstLsn, frames, offsets) => {
      shipped.push({ firstLsn, frames: frames.slice(), offsets });
    });
    const writes = [];
    for (let index = 0; index < 200; index++)
      writes.push(primary.append([intent(`w${index}`, 90)]));
    writes.push(primary.append([intent('x', 10), intent('y', 20)]));
    await Promise.all(writes);
    expect(shipped.map((item) => item.firstLsn)).toEqual([...Array(201).keys()].map((i) => i + 1));
    expect(shipped.at(-1)?.offsets).toEqual([0, 48]);
    for (const item of shipped) await replica.appendFrames(item.frames);
    expect(replica.durableLsn).toBe(202);
    const [left, right] = [await readAll(primary), await readAll(replica)];
    expect(right.length).toBe(left.length);
    left.forEach((record, index) => {
      expect(right[index]?.checksum).toBe(record.checksum);
      expect(sameBytes(right[index]!.payload, record.payload)).toBe(true);
    });
    const again = await primary.readFrames({ lsnFirst: 1, lsnLast: 202 });
    expect(sameBytes(again.frames, Buffer.concat(shipped.map((item) => item.frames)))).toBe(true);
    expect(again.prevChecksum).toBe(0);
    await replica.close();
    const reopened = await open(disk, '/r');
    expect(reopened.lastLsn).toBe(202);
    await Promise.all([primary.close(), reopened.close()]);
  });

  it('rejects bad, out-of-order and off-chain frames, appending nothing', async () => {
    const disk = new SimDisk({ seed: 8 });
    const primary = await open(disk, '/p');
    const replica = await open(disk, '/r');
    const shipped: Uint8Array[] = [];
    primary.onAppend((_first, frames) => shipped.push(frames.slice()));
    await primary.append([intent('a')]);
    await primary.append([intent('b')]);
    const [first, second] = shipped as [Uint8Array, Uint8Array];
    const flipped = first.slice();
    flipped[40] = (flipped[40] ?? 0) ^ 1;
    await expect(replica.appendFrames(flipped)).rejects.toMatchObject({ code: 'INVALID' });
    await expect(replica.appendFrames(second)).rejects.toThrow(/does not follow/);
    await expect(replica.appendFrames(new Uint8Array(0))).rejects.toMatchObject({
      code: 'INVALID',
    });
    expect(replica.lastLsn).toBe(0);
    await replica.appendFrames(first);
    const other = await open(disk, '/o');
    const foreign: Uint8Array[] = [];
    other.onAppend((_first, frames) => foreign.push(frames.slice()));
    await other.append([intent('zz')]);
    await other.append([intent('b')]);
    await expect(replica.appendFrames(foreign[1]!)).rejects.toThrow(/checksum chain/);
    await replica.appendFrames(second);
    expect(replica.lastLsn).toBe(2);
    await Promise.all([primary.close(), replica.close(), other.close()]);
  });

  it('truncates a divergent suffix, then takes the primary frames after it', async () => {
    const disk = new SimDisk({ seed: 9 });
    const primary = await open(disk, '/p');
    const replica = await open(disk, '/r');
    const shipped: Uint8Array[] = [];
    primary.onAppend((_first, frames) => shipped.push(frames.slice()));
    await primary.append([intent('a')]);
    await replica.appendFrames(shipped[0]!);
    await replica.append([intent('stale', 40, 1), intent('stale2', 40, 1)]);
    await primary.append([intent('b', 40, 2)]);
    await expect(replica.appendFrames(shipped[1]!)).rejects.toThrow(/does not follow/);
    await replica.truncateSuffix({ lsnLast: 1 });
    await replica.appendFrames(shipped[1]!);
    expect((await readAll(replica)).map((record) => record.term)).toEqual([1, 2]);
    await Promise.all([primary.close(), replica.close()]);
  });
});
