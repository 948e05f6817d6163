package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.hidream.HiDreamConfig;
import io.mmdit4j.hidream.HiDreamDryRun;
import io.mmdit4j.hidream.HiDreamMemory;
import io.mmdit4j.hidream.HiDreamTransformer;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.TransformerFiles;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/** The HiDream branch of {@code mmdit inspect}: which {@code --config} values are HiDream, and the dry-run report. */
final class HiDreamInspect {
    private HiDreamInspect() {}

    /** A HiDream model: its config, the sample size of its area-preserving resize and its text length. */
    record Model(HiDreamConfig config, Integer sampleSize, int textTokens) {}

    /** The HiDream model {@code --config} names (a descriptor of family hidream, a config.json, a folder), or null. */
    static Model resolve(String config) {
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        if (d != null) {
            if (!d.family().equals("hidream")) return null;
            JsonNode defaults = d.defaults();
            Integer sample = defaults.has("sample_size") ? defaults.get("sample_size").asInt() : 1024;
            int text = defaults.path("max_sequence_length").asInt(128);
            HiDreamConfig c = d.isGenerated()
                    ? HiDreamConfig.fromDiffusersConfig(ModelRegistry.standard().resolve(config).resolve("transformer/config.json"))
                    : HiDreamConfig.named(d.name());
            if (c == null) throw new IllegalArgumentException("--config " + config + ": descriptor " + d.file() + " names no known HiDream configuration");
            return new Model(c, sample, text);
        }
        Path p = Path.of(config);
        if (Files.isRegularFile(p) && p.getFileName().toString().equals("config.json")) {
            JsonNode c = JsonConfigs.readObject(p);
            return c.path("_class_name").asText("").equals(HiDreamConfig.CLASS_NAME) ? new Model(HiDreamConfig.fromDiffusersConfig(p), 1024, 128) : null;
        }
        if (Files.isDirectory(p)) {
            Path t = TransformerFiles.transformerPath(p);
            Path json = t.resolve("config.json");
            if (Files.isRegularFile(json) && !JsonConfigs.readObject(json).path("_class_name").asText("").equals(HiDreamConfig.CLASS_NAME)) return null;
            if (!Files.isRegularFile(json)) return null;
            return new Model(HiDreamTransformer.inspect(p), 1024, 128);
        }
        return null;
    }

    static void report(Model m, int width, int height, Integer text, int batch, DType compute, PrintStream out) {
        int textTokens = text != null ? text : m.textTokens();
        HiDreamConfig c = m.config();
        HiDreamDryRun.Result r = HiDreamDryRun.run(c, width, height, m.sampleSize(), textTokens, batch, compute);
        long s = r.imageTokens(), seq = r.sequence();
        out.printf(Locale.ROOT, "model: %s%n", c);
        out.printf(Locale.ROOT, "image %dx%d%s -> latent %dx%d, %d image tokens%s, T5 %d + Llama %d tokens, joint sequence %d, batch %d, compute %s%n",
                r.width(), r.height(), r.width() == width && r.height() == height ? "" : " (area-preserving resize of " + width + "x" + height + ")",
                r.outputShape()[3], r.outputShape()[2], s, r.outputShape()[2] == r.outputShape()[3] ? "" : " (zero-padded to max_seq)",
                r.t5Tokens(), r.llamaTokens(), seq, batch, compute.torchName());
        out.printf(Locale.ROOT, "shapes: every block checked on meta tensors, output [%d, %d, %d, %d]%n",
                r.outputShape()[0], r.outputShape()[1], r.outputShape()[2], r.outputShape()[3]);
        long p = r.parameters();
        out.printf(Locale.ROOT, "parameters: %,d (%.2f B); routed experts %.2f B (%d per block, top-%d); active per token %.2f B (MoE)%n",
                p, p / 1e9, r.expertParameters() / 1e9, c.numRoutedExperts(), c.numActivatedExperts(), r.activeParameters() / 1e9);
        out.printf(Locale.ROOT, "transformer weights: fp32 %.2f GB, bf16 %.2f GB, Q8 (int8 + scales) %.2f GB, NF4 (4 bit + absmax/64) %.2f GB%n",
                p * 4 / 1e9, p * 2 / 1e9, p * 1.0625 / 1e9, p * 0.5625 / 1e9);
        long textTotal = 0;
        for (HiDreamDryRun.Encoder e : HiDreamDryRun.textEncoders()) {
            out.printf(Locale.ROOT, "text encoder %s: %.2f B parameters, bf16 %.2f GB%n", e.name(), e.parameters() / 1e9, e.parameters() * 2 / 1e9);
            textTotal += e.parameters();
        }
        out.printf(Locale.ROOT, "text encoders together: %.2f B parameters, bf16 %.2f GB (with --offload text one at a time: the largest, Llama, %.2f GB)%n",
                textTotal / 1e9, textTotal * 2 / 1e9, HiDreamDryRun.textEncoders()[3].parameters() * 2 / 1e9);
        // the same formulas the memory check of generate uses (HiDreamMemory)
        double block = HiDreamMemory.blockActivationBytes(c, batch, s, seq, compute);
        double scores = HiDreamMemory.attentionScoreBytes(c, batch, seq);
        double projected = HiDreamMemory.projectedTextBytes(c, batch, r.llamaTokens(), compute);
        out.printf(Locale.ROOT, "activations (estimate, peak inside one block): %.2f GB; + %.2f GB for the score matrix with math attention; "
                + "projected text kept per request %.3f GB%n", block / 1e9, scores / 1e9, projected / 1e9);
        out.printf(Locale.ROOT, "FLOPs per step (one transformer call; CFG doubles it): linear %.2f TFLOP (%d GEMMs, experts with balanced routing), "
                        + "attention %.2f TFLOP (%d calls), total %.2f TFLOP; text projections once per request %.3f TFLOP%n",
                r.linearFlops() / 1e12, r.gemms(), r.attentionFlops() / 1e12, r.attentionCalls(), r.totalFlops() / 1e12, r.textFlops() / 1e12);
        VaeConfig vae = VaeConfig.flux();
        HiDreamMemory memory = new HiDreamMemory(c, vae, compute);
        double decode = AutoencoderKL.decodePeakBytes(vae, batch, r.width(), r.height(), compute);
        double results = (double) batch * memory.resultBytes(r.width(), r.height());
        double offloaded = Math.max(0, textTotal - Math.max(0, HiDreamDryRun.textEncoders()[3].parameters() - p)) * (double) compute.bytes();
        out.println(InspectCommand.generateEstimate((double) (p + textTotal) * compute.bytes(),
                memory.workingBytes(batch, batch, r.width(), r.height(), textTokens), memory.stepBytes(batch, r.width(), r.height(), textTokens),
                decode, results, compute) + String.format(Locale.ROOT, " (one row per image, without CFG; every text encoder loaded: "
                + "--offload text needs %.2f GB less)", offloaded / 1e9));
    }
}
