package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The outputs of a video-VAE decode case ({@link HunyuanVideoVaeCases}, {@link WanVaeCases}) from the case's
 * {@code latents}: {@code decoder_input}, {@code decoded} (the raw decoder output) and {@code video}
 * ({@code [B, F, 3, H, W]} in [0, 1]), compared with the case's outputs.
 */
final class VideoVaeDecode {
    private VideoVaeDecode() {}

    static List<CaseResult> compare(GoldenCase c, UnaryOperator<Tensor> decoderInput, UnaryOperator<Tensor> decode, UnaryOperator<Tensor> toVideo) {
        Map<String, Tensor> actual = new HashMap<>();
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            Tensor z = decoderInput.apply(in.load("latents"));
            actual.put("decoder_input", z);
            Tensor decoded = decode.apply(z);
            actual.put("decoded", decoded);
            actual.put("video", toVideo.apply(decoded));
            return Outputs.compare(c, c.name(), actual, out);
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
