package io.mmdit4j.hunyuan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.nn.SelfAttention;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.gelu;

/** {@code HunyuanVideoSingleTransformerBlock}: one stream [image; text], attention and MLP in parallel, RoPE on the image part. */
final class HunyuanVideoSingleBlock implements AutoCloseable {
    final AdaLayerNormZero norm;
    final Linear proj_mlp;
    final SelfAttention attn;
    final Linear proj_out;

    private HunyuanVideoSingleBlock(AdaLayerNormZero norm, Linear projMlp, SelfAttention attn, Linear projOut) {
        this.norm = norm;
        this.proj_mlp = projMlp;
        this.attn = attn;
        this.proj_out = projOut;
    }

    static HunyuanVideoSingleBlock load(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
        long dim = c.innerDim();
        List<AutoCloseable> built = new ArrayList<>();
        try {
            AdaLayerNormZero n = add(built, AdaLayerNormZero.loadSingle(sd, p + "norm", dim, dtype));
            Linear mlp = add(built, Linear.load(sd, p + "proj_mlp", dim, c.mlpHidden(), dtype));
            SelfAttention a = add(built, SelfAttention.loadFlux(sd, p + "attn", dim, c.numAttentionHeads(), dtype));
            Linear out = add(built, Linear.load(sd, p + "proj_out", dim + c.mlpHidden(), dim, dtype));
            return new HunyuanVideoSingleBlock(n, mlp, a, out);
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    private static <T extends AutoCloseable> T add(List<AutoCloseable> built, T m) {
        built.add(m);
        return m;
    }

    /** @param h [B, N+T, D] image then text tokens; @param cond SiLU of this block's conditioning [B, D] */
    Tensor forward(Tensor h, Tensor cond, Rope imageRope, Tensor mask) {
        AdaLayerNormZero.Output m = norm.forward(h, cond);
        Tensor mlp = gelu(proj_mlp.forward(m.normed()), "tanh");            // [B,S,mlp]
        Tensor att = attn.forward(m.normed(), imageRope, mask);              // [B,S,D]
        Tensor joined = cat(new TensorVector(att, mlp), 2);                 // [B,S,D+mlp]: attention first
        return h.add(m.gateMsa().unsqueeze(1).mul(proj_out.forward(joined)));
    }

    @Override
    public void close() {
        Modules.closeAll(List.of(norm, proj_mlp, attn, proj_out));
    }
}
