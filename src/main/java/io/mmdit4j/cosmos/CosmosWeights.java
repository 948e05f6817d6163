package io.mmdit4j.cosmos;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorInfo;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.TorchCheckpoint;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.runtime.DType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The files a COSMOS transformer and its adapter come from: diffusers folders and safetensors files, or the reference's
 * {@code torch.save} archives ({@code checkpoint_<step>.pt}, read by {@link TorchCheckpoint} without executing them), and
 * the reference's wrapper layout ({@code transformer.} + every diffusers key, next to the adapter's keys).
 */
final class CosmosWeights {
    private CosmosWeights() {}

    /** The wrapper's prefix of the transformer's own tensors. */
    static final String WRAPPER_PREFIX = "transformer.";

    /** A folder (safetensors weights), a safetensors file, or a {@code torch.save} archive. */
    static TensorSource open(Path path) {
        if (!Files.exists(path)) throw new ModelFormatException(path + ": no such file or folder");
        if (Files.isRegularFile(path) && TorchCheckpoint.isTorchZip(path)) return TorchCheckpoint.open(path);
        String name = path.getFileName() == null ? "" : path.getFileName().toString();
        if (Files.isRegularFile(path) && (name.endsWith(".pt") || name.endsWith(".pth") || name.endsWith(".bin") || name.endsWith(".ckpt"))) {
            throw new ModelFormatException(path + ": not a zip torch.save archive (the legacy pickle format of PyTorch < 1.6 is not read)");
        }
        return WeightFiles.open(path);
    }

    /**
     * One state dict under diffusers names plus the adapter's: {@code base}'s tensors (the wrapper prefix stripped), and
     * {@code extra}'s (an adapter file; its wrapper tensors, if any, replace the base's as the reference's
     * {@code load_state_dict(strict=False)} does). Null {@code extra}: the base alone.
     */
    static StateDict merged(TensorSource base, TensorSource extra) {
        Map<String, StateDict.Entry> entries = new LinkedHashMap<>();
        add(entries, base);
        if (extra != null) add(entries, extra);
        String origin = base.origin() + (extra == null ? "" : " + " + extra.origin());
        return new StateDict(origin, entries);
    }

    private static void add(Map<String, StateDict.Entry> entries, TensorSource s) {
        for (String k : s.keys()) {
            TensorInfo i = s.info(k);
            String name = k.startsWith(WRAPPER_PREFIX) ? k.substring(WRAPPER_PREFIX.length()) : k;
            String from = s.origin() + ":" + k;
            entries.put(name, new StateDict.Entry(i.shape(), i.dtype(), name.equals(k) ? k : from, () -> s.load(k)));
        }
    }

    /** The adapter's tensors taken from a recording (meta dry runs, parameter tables). */
    static PooledClipAdapter recordAdapter(StateDict recording, CosmosConfig c, long pooledDim, DType dtype) {
        return PooledClipAdapter.load(recording, c.numLayers(), c.conditioningDim(), pooledDim, dtype);
    }
}
