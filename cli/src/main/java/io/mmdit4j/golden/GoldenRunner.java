package io.mmdit4j.golden;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Runs golden cases found at the given paths: a case directory (with {@code case.json}), any folder above
 * case directories, or a {@code token_ids.json}. Kinds without a runner yet are reported as SKIP.
 */
public final class GoldenRunner {
    /** One line per kind; a new model family adds its kinds here. */
    private final Map<String, CaseRunner> runners = Map.ofEntries(
            Map.entry("flux_transformer", new FluxTransformerCases()),
            Map.entry("flux_pipeline", new PipelineCases()),
            Map.entry("sd3_transformer", new Sd3TransformerCases()),
            Map.entry("sd3_pipeline", new PipelineCases()),
            Map.entry("flux_img2img_pipeline", new PipelineCases(PipelineCases.Start.IMAGE)),
            Map.entry("sd3_img2img_pipeline", new PipelineCases(PipelineCases.Start.IMAGE)),
            Map.entry("flux_inpaint_pipeline", new PipelineCases(PipelineCases.Start.INPAINT)),
            Map.entry("sd3_inpaint_pipeline", new PipelineCases(PipelineCases.Start.INPAINT)), // the same rules (StableDiffusion3InpaintPipeline)
            Map.entry("sd3_swd_pipeline", new PipelineCases(PipelineCases.Start.SCALE_WISE)),
            Map.entry("hunyuan_video_transformer", new HunyuanVideoTransformerCases()),
            Map.entry("hidream_transformer", new HiDreamTransformerCases()),
            Map.entry("hidream_pipeline", new HiDreamPipelineCases()),
            Map.entry("cosmos_transformer", new CosmosTransformerCases()),
            Map.entry("cosmos_pipeline", new CosmosPipelineCases()),
            Map.entry("lora", new LoraCases()),
            Map.entry("flux_train_step", new FluxTrainStepCases()),
            Map.entry("clip_text_encoder", TextEncoderCases.CLIP),
            Map.entry("t5_encoder", TextEncoderCases.T5),
            Map.entry("flow_match_euler", SchedulerCases.FLOW_MATCH_EULER),
            Map.entry("vae_decode", VaeCases.DECODE),
            Map.entry("vae_encode", VaeCases.ENCODE),
            Map.entry("llama_text_encoder", new LlamaTextEncoderCases()),
            Map.entry("hunyuan_video_vae_decode", HunyuanVideoVaeCases.DECODE),
            Map.entry("hunyuan_video_vae", HunyuanVideoVaeCases.DECODE),
            Map.entry("hunyuan_video_vae_encode", HunyuanVideoVaeCases.ENCODE),
            Map.entry("wan_vae_decode", WanVaeCases.DECODE),
            Map.entry("wan_vae_encode", WanVaeCases.ENCODE),
            Map.entry("gguf_dequant", QuantizedCases.GGUF_DEQUANT),
            Map.entry("bnb4_dequant", QuantizedCases.BNB4_DEQUANT),
            Map.entry("fp8_codes", QuantizedCases.FP8_CODES),
            Map.entry("flux_transformer_gguf", new FluxTransformerCases("gguf_file", null)),
            Map.entry("fp8_checkpoint", new FluxTransformerCases("checkpoint", null)),
            Map.entry("flux_transformer_bnb4", new FluxTransformerCases()),
            Map.entry("hunyuan_video_transformer_bnb4", new HunyuanVideoTransformerCases()));

    private Path tokenizers;

    /** Where token_ids.json checks find the vocabularies ({@code clip/}, {@code t5/}); default: searched near the file. */
    public GoldenRunner tokenizers(Path dir) {
        this.tokenizers = dir;
        return this;
    }

    public List<CaseResult> run(List<Path> paths, Consumer<CaseResult> onResult) {
        List<CaseResult> all = new ArrayList<>();
        for (Path p : paths) {
            List<Path> targets = expand(p);
            if (targets.isEmpty()) { // a folder without cases (a wrong path, a checkout without the golden data) passes nothing
                CaseResult r = CaseResult.error(p.toString(), "-", "no golden cases here (no case.json or token_ids.json below this folder)");
                onResult.accept(r);
                all.add(r);
            }
            for (Path target : targets) {
                for (CaseResult r : runOne(target)) {
                    onResult.accept(r);
                    all.add(r);
                }
            }
        }
        return all;
    }

    List<CaseResult> runOne(Path target) {
        if (Files.isRegularFile(target)) {
            if (target.getFileName().toString().endsWith(".json") && !target.getFileName().toString().equals("case.json")) {
                return TokenIdsCases.run(target, tokenizers);
            }
            return List.of(CaseResult.error(target.toString(), "-", "not a case directory or token_ids.json"));
        }
        GoldenCase c;
        try {
            c = GoldenCase.load(target);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(target.toString(), "-", e));
        }
        CaseRunner runner = runners.get(c.kind());
        if (runner == null) return List.of(CaseResult.skip(c.name(), "unsupported kind " + c.kind()));
        return runner.run(c);
    }

    /** Case directories (and token_ids.json files) at or below {@code p}, sorted. */
    static List<Path> expand(Path p) {
        if (!Files.exists(p)) return List.of(p);
        if (Files.isRegularFile(p) || Files.isRegularFile(p.resolve("case.json"))) return List.of(p);
        try (Stream<Path> s = Files.walk(p)) {
            return s.filter(f -> f.getFileName() != null
                            && (f.getFileName().toString().equals("case.json") || f.getFileName().toString().equals("token_ids.json")))
                    .map(f -> f.getFileName().toString().equals("case.json") ? f.getParent() : f)
                    .sorted()
                    .collect(Collectors.toList());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
