/**
 * Types for the parts of fs-ext (a CommonJS native addon without its own types) that
 * src/node/disk.ts uses. Checked against fs-ext 2.1.1 (fs-ext.js and fs-ext.cc).
 *
 * Caveat from the addon's source: errors of the asynchronous calls carry `syscall: 'EIO_After'`
 * and no path, and a failing asynchronous statVFS reports errno 0 (code ''), so callers must
 * not trust the error's details.
 */
declare module 'fs-ext' {
  namespace fsExt {
    /** 'ex'/'sh': exclusive/shared; 'nb' suffix: fail with EAGAIN instead of blocking. */
    type FlockFlags = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un';

    /** statvfs(3) fields; block counts are in units of `f_frsize`. */
    interface StatVfs {
      f_namemax: number;
      f_bsize: number;
      f_frsize: number;
      f_blocks: number;
      f_bavail: number;
      f_bfree: number;
      f_files: number;
      f_favail: number;
      f_ffree: number;
    }

    function flock(
      fd: number,
      flags: FlockFlags,
      callback: (error: NodeJS.ErrnoException | null) => void,
    ): void;

    function statVFS(
      path: string,
      callback: (error: NodeJS.ErrnoException | null, stats: StatVfs) => void,
    ): void;
  }

  export = fsExt;
}
