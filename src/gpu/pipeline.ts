// Compute pipelines with explicit bind group layouts, cached per device, and WGSL errors turned into
// readable Errors (shader name, line:column, the offending source line) instead of validation dumps.

/**
 * How a shader binding is used: uniform buffer, uniform buffer bound with a dynamic offset (a table of uniforms
 * whose entry is picked per dispatch: dispatch.ts UniformSteps), read-only storage, read-write storage.
 */
export type BindingKind = 'uniform' | 'uniform-dynamic' | 'read' | 'storage';

export interface ComputePipelineSpec {
  /** Shown in errors and GPU debug labels, e.g. 'matmul.wgsl' or 'matmul.wgsl (f16 weights)'. */
  name: string;
  /** The complete WGSL text. */
  code: string;
  entryPoint?: string;
  /** Pipeline-overridable constants (`override` declarations); booleans become 1/0. */
  constants?: Record<string, number | boolean>;
  /** Binding i of group 0 has kind bindings[i] (compute stage only). */
  bindings: readonly BindingKind[];
}

export interface ComputeProgram {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** A WGSL compile error or a pipeline validation error, attributed to a shader and entry point. */
export class ShaderError extends Error {
  constructor(
    readonly shader: string,
    readonly entryPoint: string,
    readonly details: string[],
  ) {
    super(`WebGPU shader "${shader}" (entry point ${entryPoint}) failed to build:\n  ${details.join('\n  ')}`);
    this.name = 'ShaderError';
  }
}

const layoutCache = new WeakMap<GPUDevice, Map<string, GPUBindGroupLayout>>();
const programCache = new WeakMap<GPUDevice, Map<string, Promise<ComputeProgram>>>();

/** Pipeline builds on one device so far: requested (a new spec) and built (finished, failed ones included). */
export interface PipelineBuilds {
  requested: number;
  built: number;
}
const buildWatchers = new WeakMap<GPUDevice, (builds: PipelineBuilds) => void>();
const buildCounts = new WeakMap<GPUDevice, PipelineBuilds>();

/**
 * Reports every pipeline build on `device` as it is requested and as it finishes (a model load counts them:
 * most of its time on a software adapter is spent here). Returns the function that stops watching.
 */
export function watchPipelineBuilds(device: GPUDevice, onChange: (builds: PipelineBuilds) => void): () => void {
  buildWatchers.set(device, onChange);
  return () => buildWatchers.delete(device);
}

function countBuild(device: GPUDevice, p: Promise<unknown>): void {
  const counts = buildCounts.get(device) ?? { requested: 0, built: 0 };
  buildCounts.set(device, counts);
  counts.requested++;
  buildWatchers.get(device)?.({ ...counts });
  const done = () => {
    counts.built++;
    buildWatchers.get(device)?.({ ...counts });
  };
  p.then(done, done);
}

function perDevice<V>(cache: WeakMap<GPUDevice, Map<string, V>>, device: GPUDevice): Map<string, V> {
  let m = cache.get(device);
  if (!m) cache.set(device, (m = new Map()));
  return m;
}

const bufferLayout: Record<BindingKind, GPUBufferBindingLayout> = {
  uniform: { type: 'uniform' },
  'uniform-dynamic': { type: 'uniform', hasDynamicOffset: true },
  read: { type: 'read-only-storage' },
  storage: { type: 'storage' },
};

/** Bind group layout for group 0 with the given binding kinds (cached per device). */
export function bindGroupLayout(device: GPUDevice, bindings: readonly BindingKind[]): GPUBindGroupLayout {
  const key = bindings.join(',');
  const cache = perDevice(layoutCache, device);
  let layout = cache.get(key);
  if (!layout) {
    layout = device.createBindGroupLayout({
      label: `layout(${key})`,
      entries: bindings.map((kind, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: bufferLayout[kind] })),
    });
    cache.set(key, layout);
  }
  return layout;
}

function numericConstants(c: Record<string, number | boolean> | undefined): Record<string, number> | undefined {
  if (!c) return undefined;
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 1 : 0) : v]));
}

function describeMessage(m: GPUCompilationMessage, code: string): string {
  const where = m.lineNum > 0 ? `line ${m.lineNum}:${m.linePos}: ` : '';
  const line = m.lineNum > 0 ? code.split('\n')[m.lineNum - 1] : undefined;
  return `${where}${m.type}: ${m.message}${line !== undefined ? `\n    | ${line.trim()}` : ''}`;
}

function errorText(e: unknown): string {
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

async function buildProgram(device: GPUDevice, spec: ComputePipelineSpec): Promise<ComputeProgram> {
  const entryPoint = spec.entryPoint ?? 'main';
  const layout = bindGroupLayout(device, spec.bindings);
  // Scopes are pushed and popped with no await in between, so concurrent builds cannot swap scopes.
  device.pushErrorScope('internal');
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: spec.name, code: spec.code });
  const pipelinePromise = device.createComputePipelineAsync({
    label: `${spec.name}:${entryPoint}`,
    layout: device.createPipelineLayout({ label: `${spec.name} layout`, bindGroupLayouts: [layout] }),
    compute: { module, entryPoint, constants: numericConstants(spec.constants) },
  });
  const validationPromise = device.popErrorScope();
  const internalPromise = device.popErrorScope();

  const [info, pipeline, validation, internal] = await Promise.all([
    typeof module.getCompilationInfo === 'function' ? module.getCompilationInfo().catch(() => null) : Promise.resolve(null),
    pipelinePromise.then(
      (p) => p,
      (e: unknown) => new Error(errorText(e)),
    ),
    validationPromise,
    internalPromise,
  ]);

  const compileErrors = (info?.messages ?? []).filter((m) => m.type === 'error');
  if (compileErrors.length > 0) throw new ShaderError(spec.name, entryPoint, compileErrors.map((m) => describeMessage(m, spec.code)));
  const details: string[] = [];
  if (pipeline instanceof Error) details.push(pipeline.message);
  if (validation) details.push(validation.message);
  if (internal) details.push(`internal error: ${internal.message}`);
  if (details.length > 0 || pipeline instanceof Error) {
    // Keep the first lines of each message: Dawn can append long dumps of the whole module.
    throw new ShaderError(spec.name, entryPoint, [...new Set(details.map((d) => d.split('\n').slice(0, 6).join('\n    ')))]);
  }
  return { pipeline, layout };
}

/**
 * The compute pipeline (and its bind group layout) for `spec`, built once per device and spec.
 * Rejects with a ShaderError on a WGSL compile error or a pipeline validation error; a failed build is not
 * cached, so a later call tries again.
 */
export function computeProgram(device: GPUDevice, spec: ComputePipelineSpec): Promise<ComputeProgram> {
  const key = JSON.stringify([spec.name, spec.entryPoint ?? 'main', spec.constants ?? {}, spec.bindings, spec.code]);
  const cache = perDevice(programCache, device);
  let p = cache.get(key);
  if (!p) {
    p = buildProgram(device, spec);
    cache.set(key, p);
    countBuild(device, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/**
 * Specializes a WGSL source: prepends `enable` directives, rebinds `alias NAME = ...;` declarations and sets
 * `const NAME: u32 = ...;` values (for what an override cannot do, e.g. size a private array), e.g.
 * specializeWgsl(src, { enable: ['f16'], aliases: { WT: 'f16' }, u32Consts: { MAX_M: 16 } }). Throws if a
 * declaration is missing, so a renamed one cannot silently leave the default in place.
 */
export function specializeWgsl(
  code: string,
  opts: { enable?: readonly string[]; aliases?: Record<string, string>; u32Consts?: Record<string, number> },
): string {
  let out = code;
  const rebind = (what: string, re: RegExp, value: string) => {
    if (!re.test(out)) throw new Error(`specializeWgsl: no "${what}" declaration in the shader`);
    out = out.replace(re, `$1${value};`);
  };
  for (const [name, type] of Object.entries(opts.aliases ?? {})) {
    rebind(`alias ${name} = ...;`, new RegExp(`^(\\s*alias\\s+${name}\\s*=\\s*)[^;]+;`, 'm'), type);
  }
  for (const [name, value] of Object.entries(opts.u32Consts ?? {})) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`specializeWgsl: ${name} = ${value} is not a u32`);
    rebind(`const ${name}: u32 = ...;`, new RegExp(`^(\\s*const\\s+${name}\\s*:\\s*u32\\s*=\\s*)[^;]+;`, 'm'), `${value}u`);
  }
  const enables = (opts.enable ?? []).map((e) => `enable ${e};\n`).join('');
  return enables + out;
}
