/**
 * sparc's resource numbers (arch/sparc/include/uapi/asm/resource.h): RLIMIT_NOFILE is 6 and
 * RLIMIT_NPROC 7, the other way round from asm-generic; every other resource keeps its number.
 */
export function sparcRlimitResource(resource: number): number {
  if (resource === 6) return 7; // sparc RLIMIT_NOFILE → generic RLIMIT_NOFILE
  if (resource === 7) return 6; // sparc RLIMIT_NPROC → generic RLIMIT_NPROC
  return resource;
}
