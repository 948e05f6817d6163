package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.hidream.HiDreamPipeline;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.SampleSize;
import io.mmdit4j.pipeline.StepNoise;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.StepListener;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code hidream_pipeline} cases: {@code HiDreamImagePipeline.__call__} through the engine's generation API, with the
 * case's scheduler folder, sample size, initial latents and per-step noise. The reference ran with a stand-in Llama
 * tokenizer (the cases give its ids); this runner writes one that gives the same ids (a word-level {@code tokenizer.json}
 * of the prompts' words, BOS first, {@code <|eot_id|>} padding) and passes it as {@code tokenizer_4}, so the ids go
 * through the pipeline's own tokenisation path. Guidance follows the reference's rule ({@link CfgRows#REFERENCE_PAIR}).
 */
final class HiDreamPipelineCases implements CaseRunner {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_pipeline_folder", folder -> runFrom(c, folder));
    }

    private static List<CaseResult> runFrom(GoldenCase c, Path folder) {
        JsonNode p = c.params();
        DType dtype = c.computeDtype();
        Map<String, Tensor> actual = new HashMap<>();
        Path work = null;
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            work = Files.createTempDirectory("hidream-case");
            Path model = modelWithScheduler(c, folder, work);
            Path tokenizer = standInTokenizer(p, in, work.resolve("tokenizer_4"));
            try (Pipeline pipe = Pipelines.load(model, LoadOptions.builder().dtype(dtype).loras(List.of()).component("tokenizer_4", tokenizer).build())) {
                GenerationSettings s = pipe.resolve(request(p, in));
                HiDreamPipeline h = pipe.unwrap(HiDreamPipeline.class);
                String ids = checkIds(h, s, in);
                if (ids != null) return List.of(CaseResult.error(c.name(), "-", ids));
                if (!s.guidance().isEmpty()) {
                    Direction d = s.guidance().get(0);
                    actual.put("pooled_pos", h.textEncoders().pooled(List.of(d.pos())));
                    actual.put("pooled_neg", h.textEncoders().pooled(List.of(d.neg())));
                }
                try (GenerationResult r = pipe.generate(s, StepListener.NONE, null)) {
                    actual.put("final_latents", Tensors.keep(r.latents().clone()));
                    actual.put("image", Tensors.keep(r.images().clone()));
                    actual.put("decoded", h.vae().decodeScaled(r.latents()));
                }
            }
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException | IOException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
            if (work != null) delete(work);
        }
    }

    /** The request the case describes: its prompts, requested size, sample size, steps, CFG, latents, step noise and guidance. */
    static GenerationRequest request(JsonNode p, SafetensorsFile in) {
        JsonNode hw = p.path("requested_height_width");
        GenerationRequest.Builder b = GenerationRequest.builder().size(hw.get(1).asInt(), hw.get(0).asInt())
                .steps(p.path("num_inference_steps").asInt()).maxSequenceLength(p.path("max_sequence_length").asInt(128))
                .initialNoise(in.load("latents"))
                .option(new SampleSize(p.path("default_sample_size").asInt(128) * p.path("vae_scale_factor").asInt(8)))
                .option(new ClassifierFreeGuidance(p.path("guidance_scale").asDouble(0), p.path("negative_prompt").isTextual()
                        ? List.of(p.get("negative_prompt").asText()) : List.of()));
        p.path("prompts").forEach(n -> b.prompt(n.asText()));
        if (in.info("step_noise") != null) b.option(new StepNoise(in.load("step_noise")));
        JsonNode mg = p.path("modulation_guidance");
        if (mg.isObject()) {
            b.guide(Direction.of(mg.path("pos_prompt").asText(), mg.path("neg_prompt").asText()).label("case").w(mg.path("w").asDouble())
                    .layers(CaseGuidance.layers(mg)).rows(CfgRows.REFERENCE_PAIR));
        }
        return b.build();
    }

    /** The case's model folder with its scheduler: a folder of links to the model's parts, and the case's {@code scheduler/}. */
    private static Path modelWithScheduler(GoldenCase c, Path model, Path work) throws IOException {
        String sched = c.spec().path("model").path("scheduler_folder").asText("");
        if (sched.isEmpty()) return model;
        Path out = Files.createDirectories(work.resolve("model"));
        try (Stream<Path> parts = Files.list(model)) {
            for (Path part : (Iterable<Path>) parts::iterator) {
                if (!part.getFileName().toString().equals("scheduler")) Files.createSymbolicLink(out.resolve(part.getFileName()), part.toAbsolutePath());
            }
        }
        Files.createSymbolicLink(out.resolve("scheduler"), c.resolve(sched).toAbsolutePath());
        return out;
    }

    /**
     * A word-level {@code tokenizer.json} giving each whitespace-separated word of the prompts the id the case's
     * {@code llama_input_ids} give it, BOS first; {@code tokenizer_config.json} names BOS and {@code <|eot_id|>} (the pad).
     */
    static Path standInTokenizer(JsonNode p, SafetensorsFile in, Path dir) throws IOException {
        long[] ids = longs(in.load("llama_input_ids"));
        int len = (int) in.info("llama_input_ids").shape()[1];
        long bos = ids[0], eot = -1;
        Map<String, Long> vocab = new LinkedHashMap<>();
        List<String> prompts = new ArrayList<>();
        p.path("prompts").forEach(n -> prompts.add(n.asText()));
        for (int r = 0; r < prompts.size(); r++) {
            String[] words = prompts.get(r).trim().split("\\s+");
            for (int k = 0; k < words.length; k++) vocab.putIfAbsent(words[k], ids[r * len + 1 + k]);
            eot = ids[r * len + 1 + words.length];
        }
        long unk = 0;
        while (vocab.containsValue(unk) || unk == bos || unk == eot) unk++;
        vocab.put("<unk>", unk);
        ObjectNode root = JSON.createObjectNode().put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (Object[] t : new Object[][] {{bos, "<|begin_of_text|>"}, {eot, "<|eot_id|>"}}) {
            added.addObject().put("id", (Long) t[0]).put("content", (String) t[1]).put("single_word", false).put("lstrip", false)
                    .put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "WhitespaceSplit");
        ObjectNode post = root.putObject("post_processor").put("type", "TemplateProcessing");
        post.putArray("single").addObject().putObject("SpecialToken").put("id", "<|begin_of_text|>").put("type_id", 0);
        ((ArrayNode) post.get("single")).addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = post.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", "<|begin_of_text|>").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode special = post.putObject("special_tokens").putObject("<|begin_of_text|>").put("id", "<|begin_of_text|>");
        special.putArray("ids").add(bos);
        special.putArray("tokens").add("<|begin_of_text|>");
        root.putNull("decoder");
        ObjectNode m = root.putObject("model").put("type", "WordLevel").put("unk_token", "<unk>");
        ObjectNode v = m.putObject("vocab");
        vocab.forEach(v::put);
        Files.createDirectories(dir);
        JSON.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), JSON.createObjectNode().put("bos_token", "<|begin_of_text|>")
                .put("eos_token", "<|eot_id|>").put("model_max_length", 131072));
        return dir;
    }

    /** A message when the stand-in tokenizer's ids or mask differ from the case's, else null. */
    private static String checkIds(HiDreamPipeline h, GenerationSettings s, SafetensorsFile in) {
        long[] expected = longs(in.load("llama_input_ids")), mask = longs(in.load("llama_attention_mask"));
        int len = (int) in.info("llama_input_ids").shape()[1];
        for (int r = 0; r < s.prompts().size(); r++) {
            long[] got = h.textEncoders().tokenIds(s.prompts().get(r), s.maxSequenceLength())[3];
            long[] want = Arrays.copyOfRange(expected, r * len, (r + 1) * len);
            if (!Arrays.equals(got, want)) return "stand-in Llama tokenizer gives " + Arrays.toString(got) + ", the case " + Arrays.toString(want);
            long real = Arrays.stream(Arrays.copyOfRange(mask, r * len, (r + 1) * len)).sum();
            long nonPad = 1 + s.prompts().get(r).trim().split("\\s+").length;
            if (real != nonPad) return "the case's Llama mask has " + real + " tokens, the stand-in " + nonPad;
        }
        return null;
    }

    private static long[] longs(Tensor t) {
        try (PointerScope scope = new PointerScope()) {
            Tensor c = t.to(org.bytedeco.pytorch.global.torch.ScalarType.Long).contiguous();
            long[] out = new long[(int) c.numel()];
            new org.bytedeco.javacpp.LongPointer(c.data_ptr()).get(out);
            return out;
        }
    }

    private static void delete(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path f : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) Files.deleteIfExists(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
