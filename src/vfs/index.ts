/** The guest's filesystem: a read-only view of the host with an in-memory overlay (src/vfs/*). */
export { Vfs, FsState } from './vfs.js';
export { buildView, showHostPath, type View, type ViewOptions } from './view.js';
export { FileDescription, dirent64, direntLegacy, type OpenFlags, type Dirent, SEEK_SET, SEEK_CUR, SEEK_END } from './file.js';
export { DirNode, RegNode, SymlinkNode, DevNode, type VNode, type VfsContext } from './node.js';
export { VfsError } from './errors.js';
export * from './stat.js';
export { vfsContext, MEM_DEV } from './context.js';
export { makeProcDir, formatMaps, formatStatus, ProcFile, type ProcSource, type ProcTask, type MapEntry } from './proc.js';
