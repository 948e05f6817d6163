package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.NormControl;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One generation, as a user states it: the same type for every family, the command line, sweeps, the server and batch
 * jobs. Anything left unset takes the model's default ({@link GenerationDefaults}: the model descriptor's, else the
 * family's) when a {@link Pipeline} resolves it to {@link GenerationSettings}; family-specific settings are typed
 * {@link GenerationOption}s, rejected when the family does not support them.
 *
 * <pre>{@code
 * GenerationRequest r = GenerationRequest.builder()
 *         .prompt("a lighthouse at dusk").size(1024, 1024).steps(4).seed(42)
 *         .guide(Direction.preset("aesthetics"))
 *         .build();
 * }</pre>
 *
 * <p>Seeds: none gives image {@code i} the seed {@code i}; one seed {@code s} gives image {@code i} the seed
 * {@code s + i} (mod 2^64); otherwise one seed per image. Seeds are PyTorch's: 0..2^64−1, held as 64-bit patterns.
 * Images are ordered prompt-major ({@code imagesPerPrompt} images of prompt 0, then of prompt 1, ...).
 */
public final class GenerationRequest {
    public static final int MAX_SIZE = 16384;
    public static final int MAX_STEPS = 10_000;
    public static final int MAX_IMAGES = 4096;

    private final List<String> prompts;
    private final int imagesPerPrompt;
    private final Integer width;
    private final Integer height;
    private final Integer steps;
    private final long[] seeds;
    private final Integer maxSequenceLength;
    private final List<Direction> guidance;
    private final NormControl normControl;
    private final Map<Class<? extends GenerationOption>, GenerationOption> options;
    private final Tensor initialNoise;

    private GenerationRequest(Builder b) {
        if (b.prompts.isEmpty()) throw new InvalidRequestException("a generation needs at least one prompt");
        for (String p : b.prompts) if (p == null) throw new InvalidRequestException("a prompt is null");
        if (b.imagesPerPrompt < 1 || (long) b.imagesPerPrompt * b.prompts.size() > MAX_IMAGES) {
            throw new InvalidRequestException("images per prompt must be >= 1 and the request at most " + MAX_IMAGES + " images, got "
                    + b.imagesPerPrompt + " per prompt for " + b.prompts.size() + " prompts");
        }
        if (b.width != null) checkSide("width", b.width);
        if (b.height != null) checkSide("height", b.height);
        if (b.steps != null && (b.steps < 1 || b.steps > MAX_STEPS)) {
            throw new InvalidRequestException("steps must be in 1.." + MAX_STEPS + ", got " + b.steps);
        }
        if (b.maxSequenceLength != null && (b.maxSequenceLength < 1 || b.maxSequenceLength > 4096)) {
            throw new InvalidRequestException("max sequence length must be in 1..4096, got " + b.maxSequenceLength);
        }
        int images = b.prompts.size() * b.imagesPerPrompt;
        if (b.seeds.size() > 1 && b.seeds.size() != images) {
            throw new InvalidRequestException(b.seeds.size() + " seeds for " + images + " images: give one seed, or one per image");
        }
        for (Direction d : b.guidance) {
            if (d.rowWeights() != null && d.rowWeights().length != images) {
                throw new InvalidRequestException("guidance '" + d.name() + "': " + d.rowWeights().length + " row weights for " + images
                        + (images == 1 ? " image" : " images"));
            }
        }
        this.prompts = List.copyOf(b.prompts);
        this.imagesPerPrompt = b.imagesPerPrompt;
        this.width = b.width;
        this.height = b.height;
        this.steps = b.steps;
        this.seeds = b.seeds.stream().mapToLong(Long::longValue).toArray();
        this.maxSequenceLength = b.maxSequenceLength;
        this.guidance = List.copyOf(b.guidance);
        this.normControl = b.normControl;
        this.options = Map.copyOf(b.options);
        this.initialNoise = b.initialNoise;
    }

    /** Width and height: multiples of 16 (the VAE's 8× and the transformer's 2×2 patches), 16..16384. */
    public static void checkSize(int width, int height) {
        if (width < 16 || height < 16 || width > MAX_SIZE || height > MAX_SIZE || width % 16 != 0 || height % 16 != 0) {
            throw new InvalidRequestException("width and height must be multiples of 16 in 16.." + MAX_SIZE + ", got " + width + "x" + height);
        }
    }

    private static void checkSide(String name, int v) {
        if (v < 16 || v > MAX_SIZE || v % 16 != 0) {
            throw new InvalidRequestException(name + " must be a multiple of 16 in 16.." + MAX_SIZE + " (width and height must be multiples of 16), got " + v);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this request's values, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.prompts.addAll(prompts);
        b.imagesPerPrompt = imagesPerPrompt;
        b.width = width;
        b.height = height;
        b.steps = steps;
        for (long s : seeds) b.seeds.add(s);
        b.maxSequenceLength = maxSequenceLength;
        b.guidance.addAll(guidance);
        b.normControl = normControl;
        b.options.putAll(options);
        b.initialNoise = initialNoise;
        return b;
    }

    public List<String> prompts() { return prompts; }
    public int imagesPerPrompt() { return imagesPerPrompt; }
    /** Null when unset (the model's). */
    public Integer width() { return width; }
    /** Null when unset (the model's). */
    public Integer height() { return height; }
    public Integer steps() { return steps; }
    public Integer maxSequenceLength() { return maxSequenceLength; }
    public List<Direction> guidance() { return guidance; }
    /** Null when unset (no norm control). */
    public NormControl normControl() { return normControl; }
    public Collection<GenerationOption> options() { return options.values(); }
    /** Optional initial noise instead of seeded noise (in the family's latent layout, see {@link FamilyPipeline#noise}); borrowed. */
    public Tensor initialNoise() { return initialNoise; }

    /** The seeds as given (empty: image i gets seed i). */
    public long[] seeds() {
        return seeds.clone();
    }

    /** Images this request makes: prompts × images per prompt. */
    public int images() {
        return prompts.size() * imagesPerPrompt;
    }

    /** The seed of every image (see the class comment). */
    public long[] seedsPerImage() {
        long[] s = new long[images()];
        for (int i = 0; i < s.length; i++) s[i] = seeds.length == 0 ? i : seeds.length == s.length ? seeds[i] : seeds[0] + i;
        return s;
    }

    /** The option of a type, or null. */
    public <T extends GenerationOption> T option(Class<T> type) {
        return type.cast(options.get(type));
    }

    @Override
    public String toString() {
        return "GenerationRequest[prompts=" + prompts + ", n=" + imagesPerPrompt + ", size=" + width + "x" + height + ", steps=" + steps
                + ", seeds=" + Arrays.toString(seeds) + ", guidance=" + guidance + ", options=" + options.values() + "]";
    }

    /** Collects a request; only the prompt is required. */
    public static final class Builder {
        private final List<String> prompts = new ArrayList<>();
        private int imagesPerPrompt = 1;
        private Integer width;
        private Integer height;
        private Integer steps;
        private final List<Long> seeds = new ArrayList<>();
        private Integer maxSequenceLength;
        private final List<Direction> guidance = new ArrayList<>();
        private NormControl normControl;
        private final Map<Class<? extends GenerationOption>, GenerationOption> options = new LinkedHashMap<>();
        private Tensor initialNoise;

        private Builder() {}

        /** Adds a prompt (repeat for a batch of prompts). */
        public Builder prompt(String prompt) {
            prompts.add(prompt);
            return this;
        }

        /** Replaces the prompts. */
        public Builder prompts(List<String> prompts) {
            this.prompts.clear();
            this.prompts.addAll(prompts);
            return this;
        }

        /** Images per prompt (default 1). */
        public Builder imagesPerPrompt(int n) {
            this.imagesPerPrompt = n;
            return this;
        }

        public Builder size(int width, int height) {
            this.width = width;
            this.height = height;
            return this;
        }

        public Builder width(int width) {
            this.width = width;
            return this;
        }

        public Builder height(int height) {
            this.height = height;
            return this;
        }

        public Builder steps(int steps) {
            this.steps = steps;
            return this;
        }

        /** Adds a seed (one: image i gets seed + i; or one per image). */
        public Builder seed(long seed) {
            seeds.add(seed);
            return this;
        }

        /** Replaces the seeds. */
        public Builder seeds(long... seeds) {
            this.seeds.clear();
            for (long s : seeds) this.seeds.add(s);
            return this;
        }

        /** Text-encoder length (T5 tokens for FLUX and SD3, Llama tokens for HunyuanVideo). */
        public Builder maxSequenceLength(int tokens) {
            this.maxSequenceLength = tokens;
            return this;
        }

        /** Adds a modulation-guidance direction. */
        public Builder guide(Direction direction) {
            guidance.add(direction);
            return this;
        }

        /** Replaces the guidance directions. */
        public Builder guidance(List<Direction> directions) {
            guidance.clear();
            guidance.addAll(directions);
            return this;
        }

        public Builder normControl(NormControl normControl) {
            this.normControl = normControl;
            return this;
        }

        /** Sets a family option (replacing one of the same type). */
        public Builder option(GenerationOption option) {
            options.put(option.getClass(), option);
            return this;
        }

        /** Classifier-free guidance at {@code scale} (on when > 1) with the negative prompt {@code ""}. */
        public Builder cfg(double scale) {
            ClassifierFreeGuidance old = (ClassifierFreeGuidance) options.get(ClassifierFreeGuidance.class);
            return option(new ClassifierFreeGuidance(scale, old == null ? List.of() : old.negativePrompts()));
        }

        /** Classifier-free guidance at {@code scale} with negative prompts (one, or one per prompt). */
        public Builder cfg(double scale, List<String> negativePrompts) {
            return option(new ClassifierFreeGuidance(scale, negativePrompts));
        }

        /** Embedded guidance (FLUX.1-dev, HunyuanVideo). */
        public Builder guidanceScale(double scale) {
            return option(new EmbeddedGuidance(scale));
        }

        /** Explicit sigmas, used as given. */
        public Builder sigmas(double... sigmas) {
            return option(CustomSigmas.of(sigmas));
        }

        public Builder shift(double shift) {
            return option(new SchedulerShift(shift));
        }

        /** A video's frame count. */
        public Builder frames(int frames) {
            return option(new VideoFrames(frames));
        }

        /** The frame rate a video is written at. */
        public Builder fps(int fps) {
            return option(new FrameRate(fps));
        }

        /** Initial noise instead of seeded noise (borrowed: the caller keeps it alive until the generation ends). */
        public Builder initialNoise(Tensor noise) {
            this.initialNoise = noise;
            return this;
        }

        public GenerationRequest build() {
            return new GenerationRequest(this);
        }
    }
}
