// The WebLLM load errors a user sees: which library, which model, and the way out (the native engine).
import { describe, expect, it } from 'vitest';
import { LibraryAbiError, LibraryMismatchError } from '../llm/webllm/direct-weight-loader.ts';
import { webLlmLoadError } from './webllm-loader.ts';

const LIB = 'https://h/v0_2_80/Llama-3.2-1B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm';

describe('webLlmLoadError', () => {
  it('a library of other shapes: its message, then the way out', () => {
    const e = webLlmLoadError(new LibraryMismatchError(`the model library ${LIB} is compiled for other shapes than this model's LLM (m: 2 layers)`), LIB, 'm');
    expect(e.message).toBe(`the model library ${LIB} is compiled for other shapes than this model's LLM (m: 2 layers). Use a library compiled for this LLM, or choose the native engine (our kernels run any Llama shapes).`);
  });

  it('a library the runtime cannot instantiate or read: another ABI, named with the pinned one', () => {
    for (const cause of [new WebAssembly.LinkError('import env.TVMFFIWasmSafeCall not found'), new LibraryAbiError('cannot read _metadata'), Object.assign(new Error('boom'), { trace: { instantiated: true, checked: false } })]) {
      const e = webLlmLoadError(cause, LIB, 'My model');
      expect(e.message).toMatch(new RegExp(`^WebLLM 0\\.2\\.79 \\(library ABI v0_2_48\\) cannot run the model library ${LIB.replace(/\./g, '\\.')} for My model \\(.+\\): is it a library of another WebLLM version\\? Use a v0_2_48 library, or choose the native engine`));
    }
  });

  it('anything else (a download failure, say) names the library and the network', () => {
    const e = webLlmLoadError(new TypeError('Failed to fetch'), LIB, 'My model');
    expect(e.message).toBe(`WebLLM could not load My model with the model library ${LIB} (Failed to fetch). The library is downloaded once, so the first load needs the network; or choose the native engine (our kernels run any Llama shapes).`);
  });
});
