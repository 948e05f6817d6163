package io.mmdit4j.pipeline;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.TensorInfo;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.runtime.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The bytes a model's weights take once loaded in a compute dtype, from the safetensors headers alone: every component
 * folder of a diffusers model (the file {@link WeightFiles} would choose there), or a single checkpoint with the VAE
 * file and text-encoder folders given next to it. Floating-point tensors count at the compute dtype's width (a bf16
 * file loaded in fp32 doubles), quantized ones (GGUF, bitsandbytes, fp8) and others at their stored size. A family whose
 * loader reads other files, or not all of them at once, adds its parts up itself ({@code ModelFamily.weightBytes}) with
 * {@link #of(Path, DType)}.
 */
public final class WeightBytes {
    private WeightBytes() {}

    /** The model folder (or file), plus the VAE file and text-encoder folder the options give. */
    public static long of(Path model, LoadOptions o, DType compute) {
        List<Path> sources = new ArrayList<>();
        components(model, sources);
        if (o.vae() != null) sources.add(o.vae());
        if (o.textEncoders() != null) components(o.textEncoders(), sources);
        return sum(sources, compute);
    }

    /** One weights file, or a folder's own weights and those of its subfolders; 0 when there are none. */
    public static long of(Path fileOrFolder, DType compute) {
        List<Path> sources = new ArrayList<>();
        if (fileOrFolder != null) components(fileOrFolder, sources);
        return sum(sources, compute);
    }

    private static long sum(List<Path> sources, DType compute) {
        long total = 0;
        for (Path p : sources) {
            try (TensorSource src = WeightFiles.open(p)) {
                for (String k : src.keys()) {
                    TensorInfo t = src.info(k);
                    // quantized weights stay in their format (Linears dequantize per forward), so they count as stored
                    total += t.quantized() ? t.byteLength() : t.dtype().isFloatingPoint() ? t.numel() * compute.bytes() : t.byteLength();
                }
            } catch (ModelFormatException | UncheckedIOException e) {
                // not weights the loader takes (it reports real problems itself)
            }
        }
        return total;
    }

    /** A file, or a folder's own weights and those of its subfolders (diffusers components). */
    private static void components(Path p, List<Path> out) {
        if (Files.isRegularFile(p)) {
            out.add(p);
            return;
        }
        if (!Files.isDirectory(p)) return;
        if (hasWeights(p)) out.add(p);
        try (Stream<Path> s = Files.list(p)) {
            s.filter(Files::isDirectory).filter(WeightBytes::hasWeights).sorted().forEach(out::add);
        } catch (IOException e) {
            // an unreadable folder: the loader reports it
        }
    }

    private static boolean hasWeights(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(f -> f.getFileName().toString().endsWith(".safetensors") || f.getFileName().toString().endsWith(".safetensors.index.json")
                    || f.getFileName().toString().endsWith(".gguf"));
        } catch (IOException e) {
            return false;
        }
    }
}
