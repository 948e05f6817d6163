package io.mmdit4j.train;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.stack;

/**
 * {@code torch.nn.utils.clip_grad_norm_}: the global 2-norm of the per-tensor gradient norms over every tensor that has
 * a gradient, and scaling by {@code min(1, max/(total + 1e-6))} (always multiplied, as torch does).
 */
public final class GradNorms {
    private GradNorms() {}

    /** Norms of one clip call: per tensor (in the order given; NaN for a tensor without gradient), total, and the coefficient applied (1 without clipping). */
    public record Result(double[] perTensor, double total, double clipCoef) {}

    /** The norms of the gradients of {@code params} and, when {@code maxNorm} is positive, clips them in place. */
    public static Result clip(Collection<Tensor> params, double maxNorm) {
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            List<Tensor> grads = new ArrayList<>();
            double[] per = new double[params.size()];
            TensorVector norms = new TensorVector();
            int i = 0;
            for (Tensor p : params) {
                Tensor g = p.grad();
                if (g == null || g.isNull() || !g.defined()) {
                    per[i++] = Double.NaN;
                    continue;
                }
                Tensor n = g.norm();
                norms.push_back(n);
                per[i++] = n.item_double();
                grads.add(g);
            }
            if (grads.isEmpty()) return new Result(per, 0.0, 1.0);
            Tensor total = stack(norms, 0).norm();
            double coef = 1.0;
            if (maxNorm > 0) {
                Tensor c = total.add(new Scalar(1e-6)).reciprocal().mul(new Scalar(maxNorm)).clamp_max(new Scalar(1.0));
                coef = c.item_double();
                for (Tensor g : grads) g.mul_(c);
            }
            return new Result(per, total.item_double(), coef);
        }
    }
}
