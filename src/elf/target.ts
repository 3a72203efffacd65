/**
 * Which of the engine's targets an ELF file is for, from e_machine, class and data encoding.
 * The only place that maps ELF identification to a target name.
 */
import { describeMachine, EM_386, EM_PPC, EM_PPC64, EM_SPARCV9, EM_X86_64, EM_NAMES } from './constants.js';
import { elfError, type ElfClass, type Endianness } from './reader.js';

export type Target = 'x86_64' | 'i386' | 'ppc32' | 'ppc64' | 'sparc64';

export const TARGETS: readonly Target[] = ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'];

interface TargetSpec {
  target: Target;
  machine: number;
  class: ElfClass;
  endianness: Endianness;
}

const SPECS: readonly TargetSpec[] = [
  { target: 'x86_64', machine: EM_X86_64, class: 64, endianness: 'little' },
  { target: 'i386', machine: EM_386, class: 32, endianness: 'little' },
  { target: 'ppc32', machine: EM_PPC, class: 32, endianness: 'big' },
  { target: 'ppc64', machine: EM_PPC64, class: 64, endianness: 'big' },
  { target: 'sparc64', machine: EM_SPARCV9, class: 64, endianness: 'big' },
];

/** The identification fields targetOf needs (an ElfFile has them all). */
export interface TargetIdent {
  file: string;
  machine: number;
  class: ElfClass;
  endianness: Endianness;
}

function shape(cls: ElfClass, endianness: Endianness): string {
  return `${cls}-bit ${endianness}-endian (ELFCLASS${cls}, ELFDATA2${endianness === 'little' ? 'LSB' : 'MSB'})`;
}

/**
 * The target for this identification, or UniprobeError('ELF', `${file}: … not supported …`) that
 * says what the file is and what would have been accepted.
 */
export function targetOf(elf: TargetIdent): Target {
  const spec = SPECS.find((s) => s.machine === elf.machine);
  if (spec === undefined) {
    const supported = SPECS.map((s) => EM_NAMES[s.machine]?.name ?? s.target).join(', ');
    throw elfError(
      elf.file,
      `ELF for ${describeMachine(elf.machine)} is not supported (supported machines: ${supported})`,
    );
  }
  if (spec.class === elf.class && spec.endianness === elf.endianness) return spec.target;

  const what = `ELF for ${describeMachine(elf.machine)}`;
  if (elf.machine === EM_PPC64 && elf.endianness === 'little') {
    throw elfError(elf.file, `${what} in little-endian byte order (ppc64le) is not supported; only big-endian ppc64 is`);
  }
  if (elf.machine === EM_X86_64 && elf.class === 32) {
    throw elfError(elf.file, `32-bit ${what} (the x32 ABI) is not supported; x86-64 files must be ELFCLASS64`);
  }
  throw elfError(
    elf.file,
    `${shape(elf.class, elf.endianness)} ${what} is not supported; target ${spec.target} needs ${shape(spec.class, spec.endianness)}`,
  );
}
