package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.t5.T5Encoder;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.stack;

/** {@code clip_text_encoder} and {@code t5_encoder} cases: the encoder forward on the case's token ids. */
final class TextEncoderCases {
    private TextEncoderCases() {}

    static final CaseRunner CLIP = c -> run(c, (folder, in, dtype, actual) -> {
        try (ClipTextModel model = ClipTextModel.load(folder, dtype);
             ClipTextModel.Output o = model.forward(in.load("input_ids"), true)) {
            actual.put("last_hidden_state", Tensors.keep(o.lastHiddenState().clone()));
            actual.put("hidden_states", Tensors.keep(stack(new TensorVector(o.hiddenStates().toArray(new Tensor[0])), 0)));
            actual.put("penultimate_hidden_state", Tensors.keep(o.penultimate().clone()));
            actual.put("pooler_output", Tensors.keep(o.pooled().clone()));
            if (o.textEmbeds() != null) actual.put("text_embeds", Tensors.keep(o.textEmbeds().clone()));
        }
    });

    static final CaseRunner T5 = c -> run(c, (folder, in, dtype, actual) -> {
        try (T5Encoder model = T5Encoder.load(folder, dtype)) {
            try (T5Encoder.Output o = model.forward(in.load("input_ids"), null, true)) {
                actual.put("last_hidden_state", Tensors.keep(o.lastHiddenState().clone()));
                actual.put("hidden_states", Tensors.keep(stack(new TensorVector(o.hiddenStates().toArray(new Tensor[0])), 0)));
            }
            if (in.info("attention_mask") != null) {
                try (T5Encoder.Output o = model.forward(in.load("input_ids"), in.load("attention_mask"), false)) {
                    actual.put("last_hidden_state_masked", Tensors.keep(o.lastHiddenState().clone()));
                }
            }
        }
    });

    interface Body {
        void run(Path folder, SafetensorsFile inputs, DType dtype, Map<String, Tensor> actual);
    }

    private static List<CaseResult> run(GoldenCase c, Body body) {
        String folder = c.spec().path("model").path("hf_folder").asText("");
        if (folder.isEmpty()) return List.of(CaseResult.error(c.name(), "-", "case names no model.hf_folder"));
        DType dtype = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        Map<String, Tensor> actual = new HashMap<>();
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            body.run(c.resolve(folder), in, dtype, actual);
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
