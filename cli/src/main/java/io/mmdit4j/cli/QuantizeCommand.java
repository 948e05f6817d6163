package io.mmdit4j.cli;

import io.mmdit4j.io.quant.CheckpointQuantizer;
import io.mmdit4j.io.quant.CheckpointQuantizer.Target;
import io.mmdit4j.runtime.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code mmdit quantize}: writes a checkpoint as GGUF (ComfyUI-GGUF's layout), bitsandbytes 4-bit (diffusers' layout) or
 * fp8 safetensors (ComfyUI's), tensor by tensor; see {@link CheckpointQuantizer} for which tensors each format quantizes.
 */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = "Write a transformer checkpoint quantized: GGUF (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q4_k_m, q5_k, q5_k_m, q6_k), "
                + "bitsandbytes 4-bit (nf4, fp4) or fp8 (fp8, fp8-scaled, fp8-e5m2).")
final class QuantizeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "checkpoint file, transformer folder, or model folder with transformer/")
    Path model;

    @Option(names = "--type", required = true, description = "q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q4_k | q4_k_m | q5_k | q5_k_m | q6_k | nf4 | fp4 | fp8 | fp8-scaled | fp8-e5m2")
    String type;

    @Option(names = "--out", required = true, description = "output file (.gguf / .safetensors); or a folder: config.json + weights for a transformer folder, "
            + "a model folder (the quantized transformer/ and links to the original's other components) for a model folder")
    Path out;

    @Option(names = "--arch", description = "GGUF general.architecture (flux, sd3, hyvid, ...); default: from the tensor names")
    String arch;

    @Option(names = "--no-double-quant", description = "bitsandbytes: fp32 absmax instead of double quantization")
    boolean noDoubleQuant;

    @Option(names = "--bnb-dtype", defaultValue = "bf16", description = "bitsandbytes: the dtype weights dequantize to (bf16, fp16, fp32; default bf16)")
    String bnbDtype;

    @Option(names = "--overwrite", description = "replace an existing output")
    boolean overwrite;

    @picocli.CommandLine.Mixin
    ThreadsOption threads = new ThreadsOption();

    @Override
    public Integer call() {
        threads.apply();
        Target t = Target.parse(type);
        if (!Files.exists(model)) throw new IllegalArgumentException("--model " + model + ": no such file or folder");
        Path target = out;
        if (Files.exists(target) && !overwrite && !Files.isDirectory(target)) {
            throw new IllegalArgumentException("--out " + target + " exists (--overwrite replaces it)");
        }
        DType d = DType.parse(bnbDtype);
        long t0 = System.nanoTime();
        CheckpointQuantizer.Report r = CheckpointQuantizer.quantize(model, t, target, new CheckpointQuantizer.Options(!noDoubleQuant, d, arch));
        System.out.printf(java.util.Locale.ROOT, "quantized %s in %.1f s%n", r.summary(), (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
