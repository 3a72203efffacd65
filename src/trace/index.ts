/**
 * tracefs probe definitions (`kprobe_events` / `uprobe_events` syntax): parsing, listing, the
 * error_log shape and the dynamic event registry.
 */
export { parseProbeDefinition, parseProbeEvent, registrationError, KRETPROBE_MAXACTIVE_MAX, type ParseContext, type PathStat } from './parse.js';
export type {
  ParseResult,
  ProbeDefinition,
  ProbeEventDefinition,
  ProbeDeletion,
  ProbeArg,
  FetchNode,
  ProbeLocation,
  SymbolLocation,
  AddressLocation,
  FileLocation,
  ProbeFlavor,
} from './definition.js';
export type { FetchType, FetchTypeKind } from './types.js';
export {
  KERNEL_ERROR_MESSAGES,
  UNLOGGED_ERROR_MESSAGES,
  makeProbeError,
  type ProbeError,
  type TraceErrorCode,
  type KernelErrorCode,
  type UnloggedErrorCode,
  type TraceSubsystem,
} from './errors.js';
export { formatProbeDefinition, formatProbeEvent, formatProbeDeletion, formatPlace, formatArg } from './format.js';
export { formatProbeError, formatKernelErrorLog } from './errorlog.js';
export {
  ProbeEventRegistry,
  type ProbeEvent,
  type ProbeEntry,
  type RegistryResult,
  type RegistryOptions,
  type AddOptions,
  type WriteOptions,
  type WriteResult,
} from './registry.js';
export { TraceSession, type TraceSessionOptions } from './attach.js';
export {
  evaluateArg,
  formatValueText,
  formatValueJson,
  MAX_STRING_SIZE,
  FAULT_STRING,
  type ArgValue,
  type FetchEnv,
  type JsonArgValue,
} from './fetch-eval.js';
export { hitEnv, machineSymbolizer, kernelSymbolizer } from './fetch-env.js';
export {
  formatTraceText,
  formatTraceJson,
  formatTraceRecord,
  formatTimestamp,
  formatProfile,
  type TraceRecord,
  type TraceArg,
  type TraceFormat,
  type Symbolizer,
  type ProfileRow,
} from './output.js';
