package io.mmdit4j.research;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.guidance.NormControl;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * What a sweep needs from a model family: generate one batch of cells (each row its own prompt, seed and guidance),
 * and the modulation vectors of a forward for statistics. Implementations cache encoded prompts and guidance deltas
 * for the whole sweep (each distinct prompt and direction is encoded once).
 */
public interface SweepModel extends AutoCloseable {
    /** The family name recorded with each image ({@code flux}). */
    String family();

    /** Blocks counted with the global guidance counter (FLUX: double then single blocks). */
    int numBlocks();

    /**
     * Images [B, 3, H, W] in [0, 1] (fp32, CPU; caller-owned) for {@code rows}, one row per cell. Guided rows get their own
     * term (limited to their row); {@code norm} applies to every guided row. {@code observer} (nullable) sees every forward,
     * {@code onForward} is called after each denoising step.
     */
    Tensor generate(List<SweepCell> rows, NormControl norm, ConditioningObserver observer, Runnable onForward);

    /** The adaLN modulation vectors of the forward whose conditioning is {@code cond}. */
    void modulations(BlockConditioning cond, ModulationVisitor visitor);

    /** Checks a layer schedule against the model (throws IllegalArgumentException naming the bad layer). */
    default void checkLayers(String layers) {
        io.mmdit4j.guidance.LayerSchedule.parse(layers).factors(numBlocks());
    }

    @Override
    void close();
}
