package io.mmdit4j.cli;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxMemory;
import io.mmdit4j.flux.FluxParameters;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.io.quant.CheckpointQuantizer;
import io.mmdit4j.io.quant.QuantizedTensor;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.text.clip.ClipTextConfig;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.t5.T5Config;
import io.mmdit4j.text.t5.T5Encoder;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code inspect}'s weight bytes per stored format and dtype and its memory plan for a device of a given size: what a
 * FLUX generation keeps resident (transformer weights, text encoders, VAE, activations, runtime), and which of the
 * offloading choices fits — everything resident, text encoders offloaded (encode, then free), or also transformer blocks
 * offloaded ({@code --offload blocks}: the blocks stay on the host and two are on the device at a time, the running one
 * and the prefetched next). Activations are those of a GPU's fused attention (no score matrix).
 */
final class DevicePlan {
    private DevicePlan() {}

    /** Bytes every block's weights take, and the rest. */
    record TransformerBytes(Map<String, Double> byFormat, double blocks, double largestBlock, double rest) {
        double total() {
            return blocks + rest;
        }
    }

    private static final Pattern BLOCK = Pattern.compile("^((?:single_)?transformer_blocks\\.\\d+)\\.");

    /** The transformer's weight bytes as {@code quant} stores them (null: every tensor in {@code compute}). */
    static TransformerBytes transformer(FluxConfig c, CheckpointQuantizer.Target quant, DType compute) {
        Map<String, Double> byFormat = new TreeMap<>();
        Map<String, Double> perBlock = new TreeMap<>();
        double rest = 0;
        for (Map.Entry<String, long[]> e : FluxParameters.shapes(c).entrySet()) {
            long n = 1;
            for (long d : e.getValue()) n *= d;
            double bytes = (double) n * compute.bytes();
            String format = compute.torchName();
            if (quant != null) {
                try (QuantizedTensor q = CheckpointQuantizer.meta(quant, e.getKey(), e.getValue())) {
                    if (q != null) {
                        bytes = q.storedBytes();
                        format = q.format();
                    }
                }
            }
            byFormat.merge(format, bytes, Double::sum);
            Matcher m = BLOCK.matcher(e.getKey());
            if (m.find()) perBlock.merge(m.group(1), bytes, Double::sum);
            else rest += bytes;
        }
        double blocks = perBlock.values().stream().mapToDouble(Double::doubleValue).sum();
        double largest = perBlock.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
        return new TransformerBytes(byFormat, blocks, largest, rest);
    }

    static void printBytes(TransformerBytes t, PrintStream out) {
        StringBuilder b = new StringBuilder();
        t.byFormat().forEach((f, v) -> b.append(b.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%s %.2f GB", f, v / 1e9)));
        out.printf(Locale.ROOT, "weights by stored format: %s; total %.2f GB (blocks %.2f GB, largest block %.3f GB; the rest %.2f GB)%n",
                b, t.total() / 1e9, t.blocks() / 1e9, t.largestBlock() / 1e9, t.rest() / 1e9);
    }

    /** CUDA context, cuBLAS workspaces and the caching allocator's slack (an estimate). */
    static final double RUNTIME = 0.8e9;

    static void print(FluxConfig c, TransformerBytes t, DType compute, long budget, int batch, int width, int height, int textTokens, PrintStream out) {
        double t5 = ParameterShapes.count(ParameterShapes.of("T5-XXL encoder", sd -> T5Encoder.fromStateDict(sd, T5Config.xxl(), compute)))
                * (double) compute.bytes();
        double clip = ParameterShapes.count(ParameterShapes.of("CLIP-L", sd -> ClipTextModel.fromStateDict(sd, ClipTextConfig.clipL(), compute)))
                * (double) compute.bytes();
        VaeConfig vc = VaeConfig.flux();
        double vae = ParameterShapes.count(ParameterShapes.of("VAE", sd -> AutoencoderKL.fromStateDict(sd, vc, compute))) * (double) compute.bytes();
        long seq = (long) textTokens + FluxMemory.imageTokens(width, height);
        double step = FluxMemory.blockActivationBytes(c, batch, seq, compute);
        double decode = deviceDecode(vc, batch, width, height, compute);
        out.printf(Locale.ROOT, "device plan for a %.1f GB device (%s compute, %dx%d, %d text tokens, batch %d; fused attention):%n",
                budget / 1e9, compute.torchName(), width, height, textTokens, batch);
        out.printf(Locale.ROOT, "  transformer %.2f GB, text encoders %.2f GB (T5-XXL %.2f + CLIP-L %.2f, %s), VAE %.2f GB, activations: "
                        + "a block %.2f GB, the decode %.2f GB, runtime %.2f GB%n",
                t.total() / 1e9, (t5 + clip) / 1e9, t5 / 1e9, clip / 1e9, compute.torchName(), vae / 1e9, step / 1e9, decode / 1e9,
                RUNTIME / 1e9);
        // Phases: encode (text encoders), denoise (transformer, one block's activations), decode (VAE). Offloaded text encoders
        // run first and go back to the host, so the peak is the larger of the encoding and the rest.
        double encode = t5 + clip + RUNTIME;
        double[] totals = {
                t5 + clip + t.total() + vae + Math.max(step, decode) + RUNTIME,
                Math.max(encode, t.total() + vae + Math.max(step, decode) + RUNTIME),
                Math.max(encode, t.rest() + 2 * t.largestBlock() + vae + Math.max(step, decode) + RUNTIME)};
        String[] names = {"everything resident", "text encoders offloaded (encode, then back to the host)",
                "text encoders and transformer blocks offloaded (--offload blocks)"};
        int chosen = -1;
        for (int i = 0; i < totals.length; i++) {
            boolean fits = totals[i] <= budget;
            if (fits && chosen < 0) chosen = i;
            out.printf(Locale.ROOT, "  %-80s %6.2f GB  %s%n", names[i] + ":", totals[i] / 1e9,
                    fits ? String.format(Locale.ROOT, "fits (%.2f GB spare)", (budget - totals[i]) / 1e9) : "does not fit");
        }
        if (encode > budget) out.printf(Locale.ROOT, "  the text encoders alone (%.2f GB) exceed the device: encode on the host%n", (t5 + clip) / 1e9);
        out.println(chosen < 0 ? "  plan: does not fit this device, even with every offload" : "  plan: " + names[chosen]);
    }

    /** The VAE decode's peak on a device whose attention is fused (no score matrix): the CPU estimate without its math-attention term. */
    static double deviceDecode(VaeConfig vc, int batch, int width, int height, DType compute) {
        double peak = AutoencoderKL.decodePeakBytes(vc, batch, width, height, compute);
        if (io.mmdit4j.runtime.Torch.usesMathAttention(compute)) {
            double tokens = (double) width * height / ((double) vc.scaleFactor() * vc.scaleFactor());
            peak -= batch * tokens * tokens * 4;
        }
        return peak;
    }

    /** {@code 24GB}, {@code 16GiB}, {@code 12000MB}, {@code 8e9} in bytes. */
    static long parseBytes(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        double mult = 1;
        String[][] units = {{"GIB", "1073741824"}, {"MIB", "1048576"}, {"GB", "1e9"}, {"MB", "1e6"}, {"G", "1e9"}, {"M", "1e6"}, {"B", "1"}};
        for (String[] u : units) {
            if (t.endsWith(u[0])) {
                mult = Double.parseDouble(u[1]);
                t = t.substring(0, t.length() - u[0].length()).trim();
                break;
            }
        }
        try {
            double v = Double.parseDouble(t) * mult;
            if (!(v > 0) || v > 1e15) throw new NumberFormatException();
            return (long) v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--budget " + s + ": expected a size such as 24GB, 16GiB or 12000MB");
        }
    }
}
