package io.mmdit4j.hunyuan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.nn.SingleStreamBlock;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.gelu;

/** {@code HunyuanVideoSingleTransformerBlock}: one stream [image; text], attention and MLP in parallel, RoPE on the image part. */
final class HunyuanVideoSingleBlock extends SingleStreamBlock {
    private HunyuanVideoSingleBlock(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
        super(sd, p, c.innerDim(), c.numAttentionHeads(), c.mlpHidden(), dtype);
    }

    static HunyuanVideoSingleBlock load(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
        return new HunyuanVideoSingleBlock(sd, p, c, dtype);
    }

    /** @param h [B, N+T, D] image then text tokens; @param cond SiLU of this block's conditioning [B, D] */
    Tensor forward(Tensor h, Tensor cond, Rope imageRope, Tensor mask) {
        AdaLayerNormZero.Output m = norm.forward(h, cond);
        Tensor mlp = gelu(proj_mlp.forward(m.normed()), "tanh");            // [B,S,mlp]
        Tensor att = attn.forward(m.normed(), imageRope, mask);              // [B,S,D]
        Tensor joined = cat(new TensorVector(att, mlp), 2);                 // [B,S,D+mlp]: attention first
        return h.add(m.gateMsa().unsqueeze(1).mul(proj_out.forward(joined)));
    }
}
