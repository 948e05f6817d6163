package io.mmdit4j.train;

import org.bytedeco.pytorch.Tensor;

/**
 * What a FLUX training run reads: {@link #size} samples of clean normalised latents {@code x0} [C, h, w], T5 states
 * [T, d] and a pooled CLIP vector [P] (fp32, owned by the data), and the empty caption's T5 states and pooled vector,
 * which caption dropout puts in their place. Samples must be readable in any order (resume).
 */
public interface TrainingData extends AutoCloseable {
    int size();

    Tensor latents(int i);

    Tensor promptEmbeds(int i);

    Tensor pooled(int i);

    Tensor emptyPromptEmbeds();

    Tensor emptyPooled();

    /** A one-line description for the progress output and the trainer state. */
    String describe();

    @Override
    void close();
}
