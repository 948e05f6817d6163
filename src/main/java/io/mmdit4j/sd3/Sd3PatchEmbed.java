package io.mmdit4j.sd3;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * diffusers' {@code PatchEmbed} as SD3 configures it: a stride-p p x p convolution (computed as one GEMM over the
 * flattened patches, which is the same sum and runs on meta tensors) plus the loaded 2-D sin-cos positional table
 * {@code pos_embed} {@code [1, M², D]} (fp32), centre-cropped to the latent grid. The sum is taken in fp32 and cast
 * back, as the reference's type promotion does.
 */
final class Sd3PatchEmbed implements AutoCloseable {
    final Linear proj;       // pos_embed.proj: Conv2d weight [D, C, p, p] viewed as [D, C·p·p]
    final Tensor pos_embed;  // pos_embed.pos_embed [1, M², D] fp32
    private final int patch;
    private final long maxSize;

    private Sd3PatchEmbed(Linear proj, Tensor posEmbed, int patch, long maxSize) {
        this.proj = proj;
        this.pos_embed = posEmbed;
        this.patch = patch;
        this.maxSize = maxSize;
    }

    static Sd3PatchEmbed load(StateDict sd, String prefix, Sd3Config c, DType dtype) {
        long d = c.innerDim(), p = c.patchSize(), m = c.posEmbedMaxSize(), in = c.inChannels();
        Tensor w = null, b = null, pos = null;
        try (PointerScope scope = new PointerScope()) {
            // the table first: the order of takes is the parameter list's (Sd3Parameters), which seeds random weights
            pos = sd.take(prefix + ".pos_embed", DType.F32, 1, m * m, d); // stays fp32 whatever the compute dtype
            w = sd.take(prefix + ".proj.weight", dtype, d, in, p, p);
            b = sd.take(prefix + ".proj.bias", dtype, d);
            Linear linear = new Linear(Tensors.keep(w.view(d, in * p * p)), b);
            Native.release(w);
            return new Sd3PatchEmbed(linear, pos, c.patchSize(), m);
        } catch (RuntimeException e) {
            Native.release(w);
            Native.release(b);
            Native.release(pos);
            throw e;
        }
    }

    /** {@code [B, C, H, W] -> [B, (H/p)(W/p), D]}, row-major patches, positional table added. */
    Tensor forward(Tensor x) {
        long bsz = x.size(0), ch = x.size(1), h = x.size(2) / patch, w = x.size(3) / patch;
        Tensor patches = x.reshape(bsz, ch, h, patch, w, patch).permute(0, 2, 4, 1, 3, 5).reshape(bsz, h * w, ch * patch * patch);
        Tensor tokens = proj.forward(patches);                                                       // [B, N, D]
        long top = (maxSize - h) / 2, left = (maxSize - w) / 2;
        Tensor pos = pos_embed.view(maxSize, maxSize, -1).narrow(0, top, h).narrow(1, left, w).reshape(1, h * w, -1);
        return tokens.add(pos).to(tokens.scalar_type());
    }

    @Override
    public void close() {
        proj.close();
        Native.release(pos_embed);
    }
}
