package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.llama.HunyuanPromptEncoder;
import io.mmdit4j.text.llama.LlamaModel;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.stack;

/**
 * {@code llama_text_encoder} cases: HunyuanVideo's LLM conditioning from token ids. {@code hidden_states} come from the full
 * forward ({@code output_hidden_states}); {@code prompt_embeds} and {@code prompt_attention_mask} from the encoder's own path
 * (a model loaded with only the layers it needs, the skipped hidden state, the template crop).
 */
final class LlamaTextEncoderCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        String folder = c.spec().path("model").path("hf_folder").asText("");
        if (folder.isEmpty()) return List.of(CaseResult.error(c.name(), "-", "case names no model.hf_folder"));
        if (!c.params().path("crop_start").canConvertToInt() || !c.params().path("num_hidden_layers_to_skip").canConvertToInt()) {
            return List.of(CaseResult.error(c.name(), "-", "params.crop_start / params.num_hidden_layers_to_skip missing"));
        }
        int crop = c.params().get("crop_start").asInt(), skip = c.params().get("num_hidden_layers_to_skip").asInt();
        DType dtype = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        Path modelDir = c.resolve(folder);
        Map<String, Tensor> actual = new HashMap<>();
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            Tensor ids = in.load("input_ids"), mask = in.load("attention_mask");
            try (LlamaModel full = LlamaModel.load(modelDir, dtype); LlamaModel.Output o = full.forward(ids, mask)) {
                actual.put("hidden_states", Tensors.keep(stack(new TensorVector(o.hiddenStates().toArray(new Tensor[0])), 0)));
                int layers = full.config().numHiddenLayers() - skip;
                try (LlamaModel partial = LlamaModel.load(modelDir, dtype, layers);
                     HunyuanPromptEncoder.LlamaEmbeddings e = HunyuanPromptEncoder.llamaEmbeddings(partial, ids, mask, skip, crop)) {
                    actual.put("prompt_embeds", Tensors.keep(e.promptEmbeds().clone()));
                    actual.put("prompt_attention_mask", Tensors.keep(e.attentionMask().clone()));
                }
            }
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
