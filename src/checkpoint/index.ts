// Public API of the checkpoint module (browser + Node; the Node file source is src/node/file-source.ts).
export type * from './types.ts';
export {
  BlobByteSource,
  BlobCheckpointFiles,
  blobFilesFromFileList,
  MemoryByteSource,
  UrlByteSource,
  UrlCheckpointFiles,
  type ByteSource,
  type CheckpointFiles,
  type UrlSourceOptions,
} from './byte-source.ts';
export {
  Checkpoint,
  openCheckpoint,
  openSafetensorsFolder,
  INDEX_FILE,
  SINGLE_FILE,
  type OpenCheckpointOptions,
  type TensorLocation,
} from './checkpoint.ts';
export {
  CLIP_VIT_L_336,
  COMPRESSOR_HEAD_DIM,
  LLAMA3_STOP_IDS,
  parseClipVisionConfig,
  parseLlavaMiniConfig,
  visionPatchCount,
  type ParseConfigOptions,
} from './config.ts';
export {
  bf16ToNumber,
  f16ToNumber,
  f32ToBf16Bytes,
  f32ToF16Bytes,
  numberToBf16,
  numberToF16,
} from './dtype.ts';
export {
  clipLayerPrefix,
  expectedTensorList,
  expectedTensors,
  llamaLayerPrefix,
  prefusionLayerPrefix,
  requiredTensors,
  VISION_PREFIX,
  type ExpectedTensor,
  type TensorPart,
  type TensorRole,
} from './expected-tensors.ts';
export {
  bytesToF32,
  DTYPE_BYTES,
  readSafetensorsHeader,
  readTensorBytes,
  readTensorF32,
  readTensorRowBytes,
  type SafetensorsDType,
  type SafetensorsFile,
  type SafetensorsTensor,
} from './safetensors.ts';
export {
  buildSafetensorsHeader,
  encodeTensor,
  serializeSafetensors,
  tensorByteLength,
  type SafetensorsLayout,
  type TensorSpec,
  type TensorToWrite,
  type WritableDType,
} from './safetensors-write.ts';
export { sincos2dPosEmbed } from './sincos.ts';
