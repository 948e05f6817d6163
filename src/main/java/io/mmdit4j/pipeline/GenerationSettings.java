package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A generation with nothing left open: a {@link GenerationRequest} resolved against a model (its defaults filled in,
 * its guidance resolved, its options checked), plus what the model was loaded with. This is the settings record that
 * image and video metadata carry ({@link #toJson}), that {@code generate --from} replays ({@link #read}), and that
 * sweeps and the server log.
 *
 * @param model        what the model was loaded from: a descriptor name or a path
 * @param seeds        one per image
 * @param initialNoise the request's initial noise, or null (borrowed; never recorded)
 */
public record GenerationSettings(String model, String family, DType dtype, List<String> prompts, int imagesPerPrompt, int width, int height,
                                 int steps, long[] seeds, int maxSequenceLength, List<Direction> guidance, NormControl normControl,
                                 Map<Class<? extends GenerationOption>, GenerationOption> options, List<LoraSpec> loras, boolean loraStrict,
                                 String sampler, Tensor initialNoise) {
    /** The metadata key of the settings record in PNG text chunks and video container metadata. */
    public static final String METADATA_KEY = "mmdit4j";
    private static final ObjectMapper JSON = new ObjectMapper();

    public GenerationSettings {
        prompts = List.copyOf(prompts);
        seeds = seeds.clone();
        guidance = List.copyOf(guidance);
        options = Map.copyOf(options);
        loras = List.copyOf(loras);
        if (normControl == null) normControl = NormControl.NONE;
        if (seeds.length != prompts.size() * imagesPerPrompt) {
            throw new IllegalArgumentException(seeds.length + " seeds for " + prompts.size() * imagesPerPrompt + " images");
        }
    }

    /** Images (or videos) made: prompts × images per prompt. */
    public int images() {
        return prompts.size() * imagesPerPrompt;
    }

    /** The prompt of image {@code i}. */
    public String prompt(int i) {
        return prompts.get(i / imagesPerPrompt);
    }

    public long seed(int i) {
        return seeds[i];
    }

    @Override
    public long[] seeds() {
        return seeds.clone();
    }

    /** The option of a type, or null. */
    public <T extends GenerationOption> T option(Class<T> type) {
        return type.cast(options.get(type));
    }

    /** The guidance against negative prompts of these settings (CFG, FLUX's true CFG), or null. */
    public NegativePrompts negativePrompts() {
        for (GenerationOption o : options.values()) if (o instanceof NegativePrompts n) return n;
        return null;
    }

    /**
     * The settings of image {@code i} alone: its prompt (and negative prompt), its seed, and each direction with its row
     * weight folded into {@code w} (a direction whose weight for this image is 0 is left out: unguided is bit-identical
     * to {@code w = 0}). Generating them alone makes this image again (see the README on batch rounding).
     */
    public GenerationSettings forImage(int i) {
        if (i < 0 || i >= images()) throw new IndexOutOfBoundsException("image " + i + " of " + images());
        int p = i / imagesPerPrompt;
        Map<Class<? extends GenerationOption>, GenerationOption> opts = rows(i, i + 1);
        NegativePrompts cfg = negativePrompts();
        if (cfg != null && cfg.negativePrompts().size() > 1) opts.put(cfg.getClass(), cfg.withNegatives(List.of(cfg.negatives(prompts.size()).get(p))));
        List<Direction> dirs = new ArrayList<>();
        boolean cfgActive = cfg != null && cfg.active();
        for (Direction d : guidance) {
            Direction alone = GuidancePlan.alone(d, i, images(), cfgActive);
            if (alone != null) dirs.add(alone);
        }
        return new GenerationSettings(model, family, dtype, List.of(prompts.get(p)), 1, width, height, steps, new long[] {seeds[i]},
                maxSequenceLength, dirs, normControl, opts, loras, loraStrict, sampler, null);
    }

    /**
     * The initial latents of {@code shape} in {@code dtype}: the request's initial noise (checked against the shape, a
     * converted copy), else {@code randn} per image with its own seeded CPU generator. Owned by the caller.
     */
    public Tensor initialLatents(long[] shape, io.mmdit4j.runtime.DType dtype) {
        if (initialNoise == null) return io.mmdit4j.sampling.Noise.randnPerRow(shape, seeds, dtype);
        long[] given = io.mmdit4j.runtime.Tensors.shape(initialNoise);
        if (!Arrays.equals(given, shape)) {
            throw new InvalidRequestException("initial noise has shape " + Arrays.toString(given) + ", expected " + Arrays.toString(shape));
        }
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            return io.mmdit4j.runtime.Tensors.keep(initialNoise.to(dtype.scalarType()).clone());
        }
    }

    /**
     * The settings of images {@code from..to-1} as a request of their own, for chunked generation ({@link MemoryPlanner}):
     * whole prompts, or images of one prompt; each image keeps its prompt, negative prompt, seed, row weights (and the
     * batch-dependent sign of {@link CfgRows#REFERENCE_PAIR}, {@link GuidancePlan#forImages}) and
     * per-image options ({@link GenerationOption#forImages}: given step noise), so it gets the same noise and guidance as
     * in the whole batch. {@code initialNoise}: the chunk's rows of the request's
     * initial noise (borrowed), or null.
     */
    public GenerationSettings chunk(int from, int to, Tensor initialNoise) {
        int n = imagesPerPrompt;
        if (from < 0 || to > images() || from >= to) throw new IndexOutOfBoundsException("images " + from + ".." + to + " of " + images());
        List<String> ps;
        int perPrompt;
        List<String> negatives = null;
        NegativePrompts cfg = negativePrompts();
        if (from % n == 0 && to % n == 0) {
            ps = prompts.subList(from / n, to / n);
            perPrompt = n;
            if (cfg != null && cfg.negativePrompts().size() > 1) negatives = cfg.negativePrompts().subList(from / n, to / n);
        } else if (from / n == (to - 1) / n) {
            ps = List.of(prompts.get(from / n));
            perPrompt = to - from;
            if (cfg != null && cfg.negativePrompts().size() > 1) negatives = List.of(cfg.negativePrompts().get(from / n));
        } else {
            throw new IllegalArgumentException("a chunk is whole prompts or images of one prompt, not images " + from + ".." + to
                    + " with " + n + " per prompt");
        }
        Map<Class<? extends GenerationOption>, GenerationOption> opts = rows(from, to);
        if (negatives != null) opts.put(cfg.getClass(), cfg.withNegatives(negatives));
        List<Direction> dirs = new ArrayList<>();
        boolean cfgActive = cfg != null && cfg.active();
        for (Direction d : guidance) dirs.add(GuidancePlan.forImages(d, from, to, images(), cfgActive));
        return new GenerationSettings(model, family, dtype, ps, perPrompt, width, height, steps, Arrays.copyOfRange(seeds, from, to),
                maxSequenceLength, dirs, normControl, opts, loras, loraStrict, sampler, initialNoise);
    }

    /** The options of images {@code from..to-1} ({@link GenerationOption#forImages}). */
    private Map<Class<? extends GenerationOption>, GenerationOption> rows(int from, int to) {
        Map<Class<? extends GenerationOption>, GenerationOption> opts = new LinkedHashMap<>();
        options.forEach((type, o) -> opts.put(type, o.forImages(from, to)));
        return opts;
    }

    /** The same settings with another model reference (e.g. the path a descriptor resolved to). */
    public GenerationSettings withModel(String model) {
        return new GenerationSettings(model, family, dtype, prompts, imagesPerPrompt, width, height, steps, seeds, maxSequenceLength, guidance,
                normControl, options, loras, loraStrict, sampler, initialNoise);
    }

    /** The same settings with {@code option} added (or replacing the option of its type). */
    public GenerationSettings withOption(GenerationOption option) {
        Map<Class<? extends GenerationOption>, GenerationOption> opts = new LinkedHashMap<>(options);
        opts.put(option.getClass(), option);
        return new GenerationSettings(model, family, dtype, prompts, imagesPerPrompt, width, height, steps, seeds, maxSequenceLength, guidance,
                normControl, opts, loras, loraStrict, sampler, initialNoise);
    }

    /** The request that resolves to these settings again (every value explicit). */
    public GenerationRequest toRequest() {
        GenerationRequest.Builder b = GenerationRequest.builder().prompts(prompts).imagesPerPrompt(imagesPerPrompt).size(width, height)
                .steps(steps).seeds(seeds).maxSequenceLength(maxSequenceLength).guidance(guidance).normControl(normControl)
                .initialNoise(initialNoise);
        options.values().forEach(b::option);
        return b.build();
    }

    // ------------------------------------------------------------------------------------------ the record

    /** The settings record as JSON (the {@code mmdit4j} metadata of images and videos). */
    public ObjectNode toJson() {
        ObjectNode m = JSON.createObjectNode();
        m.put("model", model).put("family", family);
        ArrayNode p = m.putArray("prompts");
        prompts.forEach(p::add);
        if (seeds.length == 1) m.set("seed", SettingsJson.seedNode(seeds[0]));
        else {
            ArrayNode s = m.putArray("seeds");
            for (long v : seeds) s.add(SettingsJson.seedNode(v));
        }
        m.put("width", width).put("height", height).put("steps", steps).put("max_sequence_length", maxSequenceLength)
                .put("images_per_prompt", imagesPerPrompt).put("dtype", dtype.torchName()).put("sampler", sampler);
        // in one order whatever the map's (its iteration order changes from one JVM to the next): records repeat byte for byte
        options.values().stream().sorted(java.util.Comparator.comparing(o -> o.getClass().getName())).forEach(o -> o.write(m));
        if (normControl != NormControl.NONE) m.put("mg_norm", normControl.text());
        if (!loras.isEmpty()) {
            ArrayNode a = m.putArray("loras");
            for (LoraSpec l : loras) a.addObject().put("file", l.file().toString()).put("scale", l.scale());
            m.put("lora_strict", loraStrict);
        }
        ArrayNode mg = m.putArray("modulation_guidance");
        for (Direction d : guidance) {
            ObjectNode o = mg.addObject().put("label", d.name());
            if (d.preset() != null) o.put("preset", d.preset());
            o.put("pos", d.pos()).put("neg", d.neg()).put("w", d.w()).put("layers", d.layers().toString()).put("steps", d.steps().toString())
                    .put("rows", d.rows().toString());
            if (d.rowWeights() != null) {
                ArrayNode rw = o.putArray("row_weights");
                for (double v : d.rowWeights()) rw.add(v);
            }
        }
        return m;
    }

    /** The metadata key of the A1111-style text other tools read ({@link Parameters}). */
    public static final String PARAMETERS_KEY = "parameters";

    /**
     * The metadata of image {@code i}: {@code parameters}, the A1111-style text other tools parse ({@link Parameters}); its
     * seed; and {@code mmdit4j}, the full settings record {@code generate --from} replays. No chunk is named {@code prompt}
     * or {@code workflow}: ComfyUI reads those as its own JSON graphs.
     */
    public Map<String, String> metadata(int i) {
        GenerationSettings one = forImage(i);
        Map<String, String> text = new LinkedHashMap<>();
        text.put(PARAMETERS_KEY, Parameters.of(one));
        text.put("seed", SettingsJson.seedText(one.seeds[0]));
        text.put(METADATA_KEY, one.toJson().toString());
        return text;
    }

    /** A settings record read back: the model and how it was loaded, and the request that makes the same images. */
    public record Recorded(String model, String family, DType dtype, List<LoraSpec> loras, boolean loraStrict, GenerationRequest request) {}

    /**
     * Reads a settings record strictly: every key has its type and range, or an {@link InvalidRequestException} names it
     * and {@code where} it came from. Also reads the records of earlier versions (SD3's {@code guidance_scale} with
     * {@code cfg}, HunyuanVideo's {@code videos_per_prompt}).
     */
    public static Recorded read(JsonNode j, String where) {
        if (j == null || !j.isObject()) throw new InvalidRequestException(where + ": the settings record is not a JSON object");
        GenerationRequest.Builder b = GenerationRequest.builder();
        List<String> prompts = SettingsJson.texts(j, "prompts", where);
        if (prompts == null || prompts.isEmpty()) throw new InvalidRequestException(where + ": the settings record has no prompts");
        b.prompts(prompts);
        Integer n = SettingsJson.integer(j, "images_per_prompt", 1, GenerationRequest.MAX_IMAGES, where);
        if (n == null) n = SettingsJson.integer(j, "videos_per_prompt", 1, GenerationRequest.MAX_IMAGES, where);
        if (n != null) b.imagesPerPrompt(n);
        Integer w = SettingsJson.integer(j, "width", 16, GenerationRequest.MAX_SIZE, where);
        Integer h = SettingsJson.integer(j, "height", 16, GenerationRequest.MAX_SIZE, where);
        if (w != null) b.width(w);
        if (h != null) b.height(h);
        Integer steps = SettingsJson.integer(j, "steps", 1, GenerationRequest.MAX_STEPS, where);
        if (steps != null) b.steps(steps);
        Long seed = SettingsJson.seed(j, "seed", where);
        if (seed != null) b.seed(seed);
        JsonNode seeds = j.get("seeds");
        if (seeds != null && !seeds.isNull()) {
            if (!seeds.isArray()) throw SettingsJson.bad(where, "seeds", "a list of seeds", seeds);
            for (JsonNode s : seeds) b.seed(SettingsJson.seedValue(s, where + ": 'seeds'"));
        }
        Integer len = SettingsJson.integer(j, "max_sequence_length", 1, 4096, where);
        if (len != null) b.maxSequenceLength(len);
        String norm = SettingsJson.text(j, "mg_norm", where);
        if (norm != null) b.normControl(parse(where, "mg_norm", () -> NormControl.parse(norm)));
        GenerationOptions.read(j, where).forEach(b::option);
        JsonNode mg = j.get("modulation_guidance");
        if (mg != null && !mg.isNull()) {
            if (!mg.isArray()) throw SettingsJson.bad(where, "modulation_guidance", "a list of directions", mg);
            int k = 0;
            for (JsonNode d : mg) b.guide(direction(d, where + ": modulation_guidance[" + k++ + "]"));
        }
        List<LoraSpec> loras = new ArrayList<>();
        JsonNode l = j.get("loras");
        if (l != null && !l.isNull()) {
            if (!l.isArray()) throw SettingsJson.bad(where, "loras", "a list of {file, scale}", l);
            int k = 0;
            for (JsonNode e : l) {
                String at = where + ": loras[" + k++ + "]";
                if (!e.isObject()) throw new InvalidRequestException(at + ": expected {\"file\": ..., \"scale\": ...}, got " + e);
                String file = SettingsJson.text(e, "file", at);
                if (file == null) throw new InvalidRequestException(at + ": 'file' is missing");
                Double scale = SettingsJson.number(e, "scale", at);
                loras.add(parse(at, "scale", () -> new LoraSpec(Path.of(file), scale == null ? 1.0 : scale)));
            }
        }
        Boolean strict = SettingsJson.bool(j, "lora_strict", where);
        String dtype = SettingsJson.text(j, "dtype", where);
        try {
            return new Recorded(SettingsJson.text(j, "model", where), SettingsJson.text(j, "family", where),
                    dtype == null ? null : parse(where, "dtype", () -> DType.parse(dtype)), loras, strict != null && strict, b.build());
        } catch (InvalidRequestException e) {
            throw new InvalidRequestException(where + ": " + e.getMessage(), e);
        }
    }

    /**
     * The settings a complete record describes (every value explicit, as {@link #toJson} writes them), without a model to
     * resolve against: for tools that write records of their own (sweeps) and want the same metadata ({@link #metadata}).
     */
    public static GenerationSettings ofRecord(JsonNode j, String where) {
        Recorded r = read(j, where);
        GenerationRequest q = r.request();
        if (q.width() == null || q.height() == null || q.steps() == null || q.maxSequenceLength() == null) {
            throw new InvalidRequestException(where + ": the record leaves width, height, steps or max_sequence_length open");
        }
        Map<Class<? extends GenerationOption>, GenerationOption> opts = new LinkedHashMap<>();
        q.options().forEach(o -> opts.put(o.getClass(), o));
        return new GenerationSettings(r.model(), r.family(), r.dtype() == null ? DType.F32 : r.dtype(), q.prompts(), q.imagesPerPrompt(),
                q.width(), q.height(), q.steps(), q.seedsPerImage(), q.maxSequenceLength(), q.guidance(), q.normControl(), opts, r.loras(),
                r.loraStrict(), SettingsJson.text(j, "sampler", where), null);
    }

    private static Direction direction(JsonNode d, String where) {
        if (!d.isObject()) throw new InvalidRequestException(where + ": expected a direction object, got " + d);
        String pos = SettingsJson.text(d, "pos", where), neg = SettingsJson.text(d, "neg", where);
        Double w = SettingsJson.number(d, "w", where);
        if (pos == null || neg == null || w == null) throw new InvalidRequestException(where + ": a recorded direction needs pos, neg and w");
        String layers = SettingsJson.text(d, "layers", where), steps = SettingsJson.text(d, "steps", where), rows = SettingsJson.text(d, "rows", where);
        double[] rw = SettingsJson.numbers(d, "row_weights", where);
        String preset = SettingsJson.text(d, "preset", where);
        return parse(where, "direction", () -> new Direction(SettingsJson.text(d, "label", where), preset, pos, neg, w,
                LayerSchedule.parse(layers == null ? "all" : layers), StepWindow.parse(steps == null ? "all" : steps),
                rows == null ? CfgRows.BOTH : CfgRows.parse(rows), rw));
    }

    private static <T> T parse(String where, String key, java.util.function.Supplier<T> make) {
        try {
            return make.get();
        } catch (InvalidRequestException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(where + ": '" + key + "': " + e.getMessage(), e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationSettings s && s.toJson().equals(toJson()) && s.initialNoise == initialNoise;
    }

    @Override
    public int hashCode() {
        return toJson().hashCode();
    }

    @Override
    public String toString() {
        return "GenerationSettings" + toJson() + (initialNoise == null ? "" : " +initial noise " + Arrays.toString(io.mmdit4j.runtime.Tensors.shape(initialNoise)));
    }
}
