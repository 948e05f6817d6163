package io.mmdit4j.io.gguf;

import io.mmdit4j.io.CheckpointFiles;
import io.mmdit4j.io.FileBytes;
import io.mmdit4j.io.FileErrors;
import io.mmdit4j.io.FileSnapshot;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.TensorInfo;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.quant.PlainTensor;
import io.mmdit4j.io.quant.QuantizedTensor;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * A GGUF v3 checkpoint (llama.cpp, city96's ComfyUI-GGUF FLUX / SD3.5 / HunyuanVideo files) as a {@link TensorSource}:
 * float tensors (F32, F16, BF16) load as views of the file's mapping like safetensors; block-quantized tensors (Q8_0 ...
 * Q6_K) stay quantized ({@link #quantized}: a {@link GgufTensor} over the mapped blocks) and {@link #load} dequantizes them
 * to fp32 for the parts of a model that take plain tensors. The file is memory-mapped (or read into memory inside an
 * in-memory {@link CheckpointFiles#load}) and checked for changes exactly like a safetensors file.
 */
public final class GgufFile implements TensorSource {
    private final GgufHeader header;
    private final FileBytes data;
    private final Map<String, TensorInfo> infos;

    private GgufFile(GgufHeader header, FileSnapshot opened, boolean memoryMapped) {
        this.header = header;
        this.data = new FileBytes(opened, memoryMapped);
        Map<String, TensorInfo> m = new LinkedHashMap<>();
        header.tensors().forEach((k, t) -> m.put(k, new TensorInfo(k, t.type().dtype() != null ? t.type().dtype() : DType.F32, t.shape(),
                t.begin(), t.end(), t.type().quantized() || keptInFormat(t) ? t.type().name() : null)));
        this.infos = Collections.unmodifiableMap(m);
    }

    /**
     * F16 / BF16 matrices (the layers llama-quantize leaves unquantized) are given as {@link PlainTensor}s, so a Linear keeps
     * them in the file's dtype and converts them per forward like its quantized neighbours when the compute dtype is wider
     * (the model's memory stays the file's size), and converts them once at load when it is as wide (F16 with bf16).
     */
    private static boolean keptInFormat(GgufHeader.Info t) {
        return (t.type() == GgufType.F16 || t.type() == GgufType.BF16) && t.shape().length == 2;
    }

    /** Whether {@code file} starts with the GGUF magic. */
    public static boolean isGguf(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] b = in.readNBytes(4);
            return b.length == 4 && b[0] == 'G' && b[1] == 'G' && b[2] == 'U' && b[3] == 'F';
        } catch (IOException e) {
            return false;
        }
    }

    public static GgufFile open(Path file) {
        return open(file, CheckpointFiles.mappingNow());
    }

    public static GgufFile open(Path file, boolean memoryMapped) {
        FileSnapshot before = FileSnapshot.of(file);
        GgufHeader header = GgufHeader.read(file);
        FileSnapshot after = CheckpointFiles.openedUnchanged(file, before, header.fileSize());
        return new GgufFile(header, after, memoryMapped);
    }

    public GgufHeader header() {
        return header;
    }

    /** The key-value metadata. */
    public Map<String, Object> metadata() {
        return header.metadata();
    }

    @Override
    public Set<String> keys() {
        return infos.keySet();
    }

    @Override
    public TensorInfo info(String key) {
        return infos.get(key);
    }

    @Override
    public String origin() {
        return header.file().toString();
    }

    private GgufHeader.Info require(String key) {
        GgufHeader.Info t = header.tensors().get(key);
        if (t == null) throw new ModelFormatException(origin() + ": no tensor " + FileErrors.quote(key));
        return t;
    }

    private Tensor bytes(GgufHeader.Info t) {
        return data.range(header.dataStart() + t.begin(), t.byteLength(), "tensor " + FileErrors.quote(t.name()));
    }

    @Override
    public Tensor load(String key) {
        GgufHeader.Info t = require(key);
        if (t.type().quantized()) {
            try (GgufTensor q = quantizedTensor(t)) {
                return q.dequantize(ScalarType.Float);
            }
        }
        DType dtype = t.type().dtype();
        if (t.numel() == 0) return empty(t.shape(), new TensorOptions(dtype.scalarType()), new MemoryFormatOptional());
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(bytes(t).view(dtype.scalarType()).view(t.shape())); // offsets are aligned to >= 32 bytes
        }
    }

    @Override
    public QuantizedTensor quantized(String key) {
        GgufHeader.Info t = require(key);
        if (keptInFormat(t)) return new PlainTensor(load(key));
        return t.type().quantized() ? quantizedTensor(t) : null;
    }

    private GgufTensor quantizedTensor(GgufHeader.Info t) {
        try (PointerScope scope = new PointerScope()) {
            Tensor blocks = t.numel() == 0
                    ? empty(new long[] {0, t.type().blockBytes()}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional())
                    : bytes(t).view(t.byteLength() / t.type().blockBytes(), t.type().blockBytes());
            return new GgufTensor(t.type(), t.shape(), Tensors.keep(blocks));
        }
    }

    @Override
    public void close() {
        data.close();
    }
}
