package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sd3.Sd3Config;
import io.mmdit4j.sd3.Sd3DryRun;
import io.mmdit4j.sd3.Sd3KeyMap;
import io.mmdit4j.sd3.Sd3Parameters;
import io.mmdit4j.sd3.Sd3Transformer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** The SD3 / SD3.5 branch of {@code mmdit inspect}: which {@code --config} values are SD3, and the dry-run report. */
final class Sd3Inspect {
    private Sd3Inspect() {}

    /**
     * The SD3 configuration {@code --config} names (sd3.5-large, sd3.5-medium, sd3-medium, a descriptor of family sd3, an
     * SD3 config.json, folder or checkpoint), or null when it is not an SD3 model.
     */
    static Sd3Config resolve(String config) {
        Sd3Config named = Sd3Config.named(config);
        if (named != null) return named;
        Path p = Path.of(config);
        if (Files.isRegularFile(p) && p.getFileName().toString().equals("config.json")) {
            JsonNode c = JsonConfigs.readObject(p);
            return c.path("_class_name").asText("").equals("SD3Transformer2DModel") ? Sd3Config.fromDiffusersConfig(p) : null;
        }
        if (Files.exists(p)) {
            Path folder = Files.isDirectory(p) && Files.isDirectory(p.resolve("transformer")) && !Files.exists(p.resolve("config.json"))
                    ? p.resolve("transformer") : p;
            if (Files.isRegularFile(folder.resolve("config.json"))) return resolve(folder.resolve("config.json").toString());
            try (TensorSource src = WeightFiles.open(folder)) {
                StateDict sd = StateDict.of(src);
                boolean sd3 = Sd3KeyMap.isOriginal(sd) || sd.contains("pos_embed.proj.weight");
                return sd3 ? Sd3Transformer.inspect(p) : null;
            }
        }
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        if (d != null && d.family().equals("sd3")) {
            Sd3Config c = Sd3Config.named(d.name());
            if (c == null) c = d.variant().equals("large") ? Sd3Config.sd35Large() : d.variant().equals("medium") ? Sd3Config.sd35Medium() : null;
            if (c == null) throw new IllegalArgumentException("--config " + config + ": descriptor " + d.file() + " names no known SD3 configuration");
            return c;
        }
        return null;
    }

    private static double memoryResultBytes(Sd3Config c, int width, int height, DType compute) {
        return 3.0 * width * height * Float.BYTES + (double) c.inChannels() * (width / Sd3DryRun.VAE_SCALE) * (height / Sd3DryRun.VAE_SCALE) * compute.bytes();
    }

    static void report(Sd3Config c, int width, int height, Integer text, int batch, DType compute) {
        int textTokens = text != null ? text : Sd3DryRun.DEFAULT_TEXT_TOKENS;
        Sd3DryRun.Result r = Sd3DryRun.run(c, width, height, textTokens, batch, compute);
        long params = Sd3Parameters.count(c);
        long table = Sd3Parameters.storedElements(c) - params;
        long seq = r.imageTokens() + textTokens, d = c.innerDim();
        // the same formulas the memory check of generate uses (Sd3Memory)
        double blockActivations = io.mmdit4j.sd3.Sd3Memory.blockActivationBytes(c, batch, seq, compute);
        double scores = io.mmdit4j.sd3.Sd3Memory.attentionScoreBytes(c, batch, seq);
        System.out.printf(Locale.ROOT, "model: %s%n", c);
        System.out.printf(Locale.ROOT, "image %dx%d -> latent %dx%d, %d image tokens, %d text tokens, batch %d, compute %s%n",
                width, height, width / Sd3DryRun.VAE_SCALE, height / Sd3DryRun.VAE_SCALE, r.imageTokens(), textTokens, batch, compute.torchName());
        System.out.printf(Locale.ROOT, "shapes: every block checked on meta tensors, output [%d, %d, %d, %d]%n",
                r.outputShape()[0], r.outputShape()[1], r.outputShape()[2], r.outputShape()[3]);
        System.out.printf(Locale.ROOT, "parameters: %,d (%.2f B); positional table buffer: %,d values (%dx%d x %d)%n", params, params / 1e9,
                table, c.posEmbedMaxSize(), c.posEmbedMaxSize(), d);
        System.out.printf(Locale.ROOT, "weights: fp32 %.2f GB, bf16/fp16 %.2f GB, fp8 %.2f GB (+ %.2f GB fp32 positional table)%n",
                params * 4 / 1e9, params * 2 / 1e9, params / 1e9, table * 4 / 1e9);
        System.out.printf(Locale.ROOT, "activations (estimate, peak inside one block): %.2f GB; + %.2f GB for the score matrix with math attention%n",
                blockActivations / 1e9, scores / 1e9);
        System.out.printf(Locale.ROOT, "FLOPs per step (one transformer call; CFG doubles it): linear %.2f TFLOP (%d GEMMs), attention %.2f TFLOP (%d calls), total %.2f TFLOP%n",
                r.linearFlops() / 1e12, r.gemms(), r.attentionFlops() / 1e12, r.attentionCalls(), r.totalFlops() / 1e12);
        var vae = io.mmdit4j.vae.VaeConfig.sd3();
        var memory = new io.mmdit4j.sd3.Sd3Memory(c, vae, compute);
        double step = blockActivations + (io.mmdit4j.runtime.Torch.usesMathAttention(compute) ? scores : 0);
        double results = (double) batch * memoryResultBytes(c, width, height, compute);
        System.out.println(InspectCommand.generateEstimate((double) (params + table) * compute.bytes(),
                memory.workingBytes(batch, batch, width, height, textTokens), step,
                io.mmdit4j.vae.AutoencoderKL.decodePeakBytes(vae, batch, width, height, compute), results, compute)
                + " (one row per image, without CFG, and without the text encoders' weights)");
    }
}
