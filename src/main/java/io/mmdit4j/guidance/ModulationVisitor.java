package io.mmdit4j.guidance;

import org.bytedeco.pytorch.Tensor;

/**
 * Receives the adaLN modulation vectors a model computes from one forward's {@link BlockConditioning} (for
 * statistics): {@code block} is the global block index, {@code stream} names the modulated stream
 * ({@code "img"}, {@code "txt"} for double-stream blocks, {@code "single"} for single-stream blocks) and
 * {@code name} the chunk ({@code shift_msa}, {@code scale_msa}, {@code gate_msa}, {@code shift_mlp},
 * {@code scale_mlp}, {@code gate_mlp}; single blocks: {@code shift}, {@code scale}, {@code gate}).
 * {@code vector} is [B, D] and belongs to the caller's scope.
 */
@FunctionalInterface
public interface ModulationVisitor {
    void accept(int block, String stream, String name, Tensor vector);
}
