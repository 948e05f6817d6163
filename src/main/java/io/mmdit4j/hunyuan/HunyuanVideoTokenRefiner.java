package io.mmdit4j.hunyuan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.FeedForward;
import io.mmdit4j.nn.LayerNorm;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.MlpEmbedder;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.SelfAttention;
import io.mmdit4j.nn.Timesteps;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.silu;

/**
 * The token refiner ({@code context_embedder}, diffusers {@code HunyuanVideoTokenRefiner}): projects the LLM states
 * to the model width and refines them with a few self-attention blocks driven by their <b>own</b> conditioning
 * {@code timestep_embedder(sin(t)) + text_embedder(masked mean of the LLM states)}. Modulation guidance does not
 * reach it (the reference keeps it unguided).
 */
final class HunyuanVideoTokenRefiner implements AutoCloseable {
    final MlpEmbedder time_text_embed_timestep_embedder;
    final MlpEmbedder time_text_embed_text_embedder;
    final Linear proj_in;
    final List<RefinerBlock> refiner_blocks;

    private HunyuanVideoTokenRefiner(MlpEmbedder timestep, MlpEmbedder text, Linear projIn, List<RefinerBlock> blocks) {
        this.time_text_embed_timestep_embedder = timestep;
        this.time_text_embed_text_embedder = text;
        this.proj_in = projIn;
        this.refiner_blocks = blocks;
    }

    static HunyuanVideoTokenRefiner load(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
        long dim = c.innerDim();
        return Modules.loading(built -> {
            MlpEmbedder timestep = track(built, MlpEmbedder.load(sd, p + "time_text_embed.timestep_embedder", 256, dim, dtype));
            MlpEmbedder text = track(built, MlpEmbedder.load(sd, p + "time_text_embed.text_embedder", c.textEmbedDim(), dim, dtype));
            Linear projIn = track(built, Linear.load(sd, p + "proj_in", c.textEmbedDim(), dim, dtype));
            List<RefinerBlock> blocks = new ArrayList<>();
            for (int i = 0; i < c.numRefinerLayers(); i++) {
                blocks.add(track(built, RefinerBlock.load(sd, p + "token_refiner.refiner_blocks." + i + ".", c, dtype)));
            }
            return new HunyuanVideoTokenRefiner(timestep, text, projIn, List.copyOf(blocks));
        });
    }

    /** The refiner's conditioning {@code [B, D]}: timestep plus the masked mean of the text states (computed in fp32). */
    Tensor conditioning(Tensor text, Tensor mask, Tensor timestep) { // text [B,S,text] compute dtype, mask [B,S], t [B]
        Tensor m = mask.to(ScalarType.Float).unsqueeze(-1);                                        // [B,S,1] fp32
        Tensor pooled = text.mul(m).sum(new long[] {1}, false, new ScalarTypeOptional())             // promoted to fp32
                .div(m.sum(new long[] {1}, false, new ScalarTypeOptional())).to(text.scalar_type());  // [B,text]
        Tensor t = time_text_embed_timestep_embedder.forward(Timesteps.sinusoidal(timestep, 256).to(text.scalar_type()));
        return t.add(time_text_embed_text_embedder.forward(pooled));
    }

    /** @return the refined text tokens {@code [B, S, D]} */
    Tensor forward(Tensor text, Tensor mask, Tensor timestep) {
        Tensor temb = conditioning(text, mask, timestep);
        Tensor activated = silu(temb);
        Tensor x = proj_in.forward(text);                                                           // [B,S,D]
        Tensor selfMask = pairMask(mask);
        for (RefinerBlock b : refiner_blocks) x = b.forward(x, activated, selfMask);
        return x;
    }

    /** {@code [B, 1, S, S]} bool: query i may see key j when both are real tokens; key 0 is always visible (no empty rows). */
    static Tensor pairMask(Tensor mask) {
        long b = mask.size(0), s = mask.size(1);
        Tensor keys = mask.to(ScalarType.Bool).view(b, 1, 1, s).expand(b, 1, s, s);
        Tensor pair = keys.mul(keys.transpose(2, 3)).contiguous(); // bool × bool = and (logical_and has no meta kernel)
        pair.select(3, 0).fill_(new Scalar(1)); // true
        return pair;
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(time_text_embed_timestep_embedder, time_text_embed_text_embedder, proj_in));
        Modules.closeAll(refiner_blocks);
    }

    /** {@code HunyuanVideoIndividualTokenRefinerBlock}: affine LayerNorms, biased self-attention, SiLU MLP, gates only. */
    record RefinerBlock(LayerNorm norm1,
                        SelfAttention attn,      // biased q/k/v and to_out.0, no q/k norms, no RoPE
                        LayerNorm norm2,
                        FeedForward ff,          // "linear-silu"
                        Linear norm_out_linear)  // SiLU(c) -> (gate_msa, gate_mlp)
            implements AutoCloseable {

        static RefinerBlock load(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
            long d = c.innerDim();
            return Modules.loading(built -> new RefinerBlock(track(built, LayerNorm.load(sd, p + "norm1", d, 1e-6, dtype)),
                    track(built, SelfAttention.load(sd, p + "attn", d, c.numAttentionHeads(), false, true, dtype)),
                    track(built, LayerNorm.load(sd, p + "norm2", d, 1e-6, dtype)),
                    track(built, FeedForward.load(sd, p + "ff", d, c.mlpHidden(), FeedForward.Activation.SILU, dtype)),
                    track(built, Linear.load(sd, p + "norm_out.linear", d, 2 * d, dtype))));
        }

        /** @param activated SiLU of the refiner conditioning [B, D]; @param mask [B, 1, S, S] bool */
        Tensor forward(Tensor x, Tensor activated, Tensor mask) {
            Tensor a = attn.forward(norm1.forward(x), null, mask);                                       // [B,S,D]
            TensorVector gates = norm_out_linear.forward(activated).chunk(2, 1);                          // gate_msa, gate_mlp [B,D]
            x = x.add(a.mul(gates.get(0).unsqueeze(1)));
            return x.add(ff.forward(norm2.forward(x)).mul(gates.get(1).unsqueeze(1)));
        }

        @Override
        public void close() {
            Modules.closeAll(Arrays.asList(norm1, attn, norm2, ff, norm_out_linear));
        }
    }
}
