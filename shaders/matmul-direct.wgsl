// Dense linear layer for CPU adapters, without workgroup memory:  y[M, N] = x[M, K] · W[N, K]^T (+ b[N])
//
// The same 64x64 output tiles, 16x16 invocations and 4x4 register block per invocation as matmul.wgsl (the
// shared tile start and epilogue of matmul-tile.wgsl), but every invocation reads its 4 rows of x and 4 rows of W
// straight from the buffers, 4 consecutive k at a time, and takes 16 dot products per step (4 row-vector x matrix
// products): no staging, no
// barriers. On a GPU that would give up the reuse shared memory buys; on a CPU adapter (SwiftShader, lavapipe) the
// caches give that reuse anyway, and the staging costs more than it saves: a barrier splits the shader into
// fibers, and the adapter's zero-initialization of workgroup memory is emitted store by store, so the 16 KiB of
// the tiled kernel took 1.4 s to build on SwiftShader (this kernel: about 25 ms). Measured at CLIP's 577 x 1024
// shapes: 1.8x the tiled kernel's speed on SwiftShader, 2.5x on lavapipe (docs/PERFORMANCE.md).
//
// How rows reach registers is a fragment of matmul-direct-loads.wgsl, chosen by the host: whole vec4 loads when
// K % 4 == 0 (every real layer), else one scalar load per element with a k < K guard. Rows past M or N read the
// last row (clamped) and are never stored. x, b, y are f32; W is `WT` (f32 as written, f16 specialized by
// src/gpu/kernels/linear.ts where the device has `shader-f16`); accumulation is f32.
//
// Dispatch and output windows are those of matmul.wgsl: tiles numbered row-major over (tile row, tile column),
// folded into a 2D grid; element (r, c) goes to y[yOff + r * ldy + c].

alias WT = f32;

//#include tile-dims

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
// x (binding 1), W (binding 2), row_start(row), load_x / load_w(start, k4): the 4 elements 4*k4 .. +3 of a row.
//#include direct-loads

// tile-start opens main: the 16x16-invocation entry point, its builtins and this invocation's tile.
//#include tile-start
  let xRows = min(vec4<u32>(m0 + 4u * ty) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(M - 1u));
  let wRows = min(vec4<u32>(n0 + 4u * tx) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(N - 1u));
  let xs = vec4<u32>(row_start(xRows.x), row_start(xRows.y), row_start(xRows.z), row_start(xRows.w));
  let ws = vec4<u32>(row_start(wRows.x), row_start(wRows.y), row_start(wRows.z), row_start(wRows.w));

  for (var k4 = 0u; k4 < (K + 3u) / 4u; k4++) {
    // Column j of wm: W row j's 4 elements, so (x row) * wm = the 4 dot products with this invocation's W rows.
    let wm = mat4x4<f32>(load_w(ws.x, k4), load_w(ws.y, k4), load_w(ws.z, k4), load_w(ws.w, k4));
    acc0 += load_x(xs.x, k4) * wm;
    acc1 += load_x(xs.y, k4) * wm;
    acc2 += load_x(xs.z, k4) * wm;
    acc3 += load_x(xs.w, k4) * wm;
  }

//#include tile-epilogue
}
