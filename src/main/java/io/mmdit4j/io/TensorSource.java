package io.mmdit4j.io;

import io.mmdit4j.io.quant.QuantizedTensor;
import org.bytedeco.pytorch.Tensor;

import java.util.Set;

/** Named tensors from one or more files. Returned tensors are new handles the caller must close. */
public interface TensorSource extends AutoCloseable {
    Set<String> keys();

    /** Header information without touching native memory; null when the key is absent. */
    TensorInfo info(String key);

    /** The tensor, viewing the file's mapping where possible (zero copy). */
    Tensor load(String key);

    /**
     * The stored data of a tensor whose {@linkplain TensorInfo#quantized info says it is quantized}, without dequantizing
     * it (owned by the caller); null for tensors stored in a plain dtype.
     */
    default QuantizedTensor quantized(String key) {
        return null;
    }

    /** Where the tensors come from (a path), for error messages. */
    String origin();

    @Override
    void close();
}
