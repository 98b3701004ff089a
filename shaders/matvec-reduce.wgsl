// The cross-lane sum of matvec.wgsl, in three forms the kernel picks per pipeline when it loads its text
// (expandWgsl with these fragments): `none` where a row has one lane (LANES = 1: CPU adapters, and short rows),
// `workgroup` for every device, `subgroup` where the device has the `subgroups` feature (the kernel then also
// prepends `enable subgroups;`). Each form has three fragments: `builtins-*` (main's extra builtins), `memory-*`
// (its workgroup memory: none for `none`, so that pipeline also skips the zero-initialization of workgroup
// memory, which SwiftShader compiles store by store) and `row-sum-*`. Each `matvec-row-sum` fragment runs once per row m of x with every
// invocation of the workgroup (M is uniform), starts from `total` = this lane's partials of its R rows and leaves
// the row set's sum in `total` on lane 0. Barriers cost most on CPU adapters (SwiftShader: 60% of a 1 x 4096 ->
// 4096 int4 matvec was the two-level workgroup reduction), so the last row of x skips the barrier that only
// protects `red` for the next one.

//#fragment builtins-none

//#fragment memory-none

//#fragment row-sum-none
    // One lane per row: `total` already holds this invocation's rows.

//#fragment builtins-workgroup

//#fragment memory-workgroup
var<workgroup> red: array<vec4<f32>, WG>;

//#fragment row-sum-workgroup
    // Two levels (2 barriers instead of log2(LANES)): lanes 0 .. L1-1 each sum 8 partials strided by L1, then
    // lane 0 sums those L1 (L1 = 8 for 64 lanes; with 1 lane, L1 = 0 and lane 0 holds the total already).
    let L1 = LANES / 8u;
    if (L1 > 0u) {
      red[lid] = total;
      workgroupBarrier();
      if (lane < L1) {
        var part = red[lid];
        for (var i = 1u; i < 8u; i++) {
          part += red[lid + L1 * i];
        }
        red[lid] = part;
      }
      workgroupBarrier();
      if (lane == 0u) {
        total = red[lid];
        for (var i = 1u; i < L1; i++) {
          total += red[lid + i];
        }
      }
      if (m + 1u < M) {
        workgroupBarrier(); // red is reused by the next m
      }
    }

//#fragment builtins-subgroup
  @builtin(subgroup_size) sg: u32,

//#fragment memory-subgroup
var<workgroup> red: array<vec4<f32>, WG>;

//#fragment row-sum-subgroup
    // Subgroups are runs of sg consecutive invocations, as implementations lay out a 1D workgroup (the parity
    // tests and the in-app self-test would show otherwise), so a cluster of c = min(sg, LANES) lanes lies inside
    // one row set: subgroupAdd sums it (sg <= LANES), or an xor butterfly over offsets < LANES when a subgroup
    // spans several row sets. Lane 0 then adds the LANES / c cluster sums, through workgroup memory.
    let c = min(sg, LANES);
    if (c > 1u) {
      if (sg <= LANES) {
        total = subgroupAdd(total);
      } else {
        for (var o = 1u; o < LANES; o <<= 1u) {
          total += subgroupShuffleXor(total, o);
        }
      }
      let parts = LANES / c;
      if (parts > 1u) {
        if (lane % c == 0u) {
          red[lid / c] = total;
        }
        workgroupBarrier();
        if (lane == 0u) {
          let first = lid / c;
          for (var i = 1u; i < parts; i++) {
            total += red[first + i];
          }
        }
        if (m + 1u < M) {
          workgroupBarrier(); // red is reused by the next m
        }
      }
    }
