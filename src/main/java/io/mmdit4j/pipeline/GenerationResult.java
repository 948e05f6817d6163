package io.mmdit4j.pipeline;

import io.mmdit4j.image.PngImages;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.sampling.Timings;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;

/**
 * What a generation made, the same for every family: images {@code [N, 3, H, W]} or video frames
 * {@code [N, F, 3, H, W]} in [0, 1] (fp32, CPU), the final latents (family layout, on the model's device), the time of
 * each phase, the {@link GenerationSettings} that made them (what metadata records and {@code --from} replays), and any
 * warnings (e.g. a layer schedule that selects no block of this model). Owns its tensors: close it.
 */
public final class GenerationResult implements AutoCloseable {
    private final Tensor output;
    private final Tensor latents;
    private final Timings timings;
    private final GenerationSettings settings;
    private final List<String> warnings;

    public GenerationResult(Tensor output, Tensor latents, Timings timings, GenerationSettings settings, List<String> warnings) {
        this.output = output;
        this.latents = latents;
        this.timings = timings;
        this.settings = settings;
        this.warnings = List.copyOf(warnings);
    }

    public GenerationSettings settings() { return settings; }
    public Timings timings() { return timings; }
    public List<String> warnings() { return warnings; }
    /** The final latents, in the family's layout (FLUX: packed tokens); owned by this result. */
    public Tensor latents() { return latents; }

    /** Whether the output is video frames. */
    public boolean isVideo() {
        return output.dim() == 5;
    }

    /**
     * Whether this is a {@code meta}-device run's result: shapes only, no values. {@link #save} refuses it (a meta run
     * must never produce a file that looks like an image), as do {@link #image} and the outputs.
     */
    public boolean isMeta() {
        return output.is_meta();
    }

    /** Images or videos made. */
    public int count() {
        return (int) output.size(0);
    }

    /** Images {@code [N, 3, H, W]} in [0, 1]; owned by this result. */
    public Tensor images() {
        if (isVideo()) throw new IllegalStateException("this generation made videos: use frames()");
        return output;
    }

    /** Video frames {@code [N, F, 3, H, W]} in [0, 1]; owned by this result. */
    public Tensor frames() {
        if (!isVideo()) throw new IllegalStateException("this generation made images: use images()");
        return output;
    }

    /** Image {@code i} as 8-bit RGB. */
    public BufferedImage image(int i) {
        if (isMeta()) throw new IllegalStateException(Outputs.META_REFUSAL);
        try (PointerScope scope = new PointerScope()) {
            return PngImages.toRgb(images().select(0, i));
        }
    }

    /**
     * Writes every image (PNG) or video (MP4 / WebM / GIF) with its settings in the metadata, so {@code generate --from}
     * repeats it: {@code out} is one file when its extension says so (one image or video), else a folder that receives
     * {@code NNN-seedS.png} (or {@code .mp4}), numbered after the highest number already there. Overwrites nothing: a file
     * that exists is refused ({@link #save(Path, Outputs.Existing)} replaces). Returns the files written.
     */
    public List<Path> save(Path out) {
        return Outputs.write(this, out);
    }

    /** As {@link #save(Path)}; {@link Outputs.Existing#REPLACE} replaces a file that exists and numbers a folder from 000. */
    public List<Path> save(Path out, Outputs.Existing existing) {
        return Outputs.write(this, out, existing);
    }

    @Override
    public void close() {
        Native.release(output);
        Native.release(latents);
    }
}
