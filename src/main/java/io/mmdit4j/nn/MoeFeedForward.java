package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.softmax;
import static org.bytedeco.pytorch.global.torch.zeros;
import static org.bytedeco.pytorch.global.torch.zeros_like;

/**
 * A mixture-of-experts SwiGLU feed-forward as DeepSeek-style inference runs it (HiDream's {@code MOEFeedForwardSwiGLU},
 * eval mode): a softmax gate over the routed experts ({@code gate.weight [E, D]}, no bias), the top-k experts of every
 * token with their softmax probabilities as weights (<b>not</b> renormalised), and a shared expert every token passes:
 * <pre>
 * y = Σ_{selected e, ascending e, accumulated from 0} p_e(x)·expert_e(x) + shared(x)
 * </pre>
 * Each expert runs as one GEMM chain per batch row over exactly the tokens routed to it (gathered, weighted, scattered
 * back by addition), so the work is {@code k/E} of running every expert on every token; all expert weights stay resident.
 * {@link #forwardDense} runs every expert on every token instead (for comparison and benchmarks).
 */
public final class MoeFeedForward implements AutoCloseable {
    final Linear gate;             // gate.weight [E, D]
    final List<SwiGlu> experts;    // experts.e
    final SwiGlu shared_experts;   // shared_experts
    private final int topK;

    public MoeFeedForward(Linear gate, List<SwiGlu> experts, SwiGlu sharedExperts, int topK) {
        if (topK < 1 || topK > experts.size()) throw new IllegalArgumentException("top-k " + topK + " must be in 1.." + experts.size());
        this.gate = gate;
        this.experts = List.copyOf(experts);
        this.shared_experts = sharedExperts;
        this.topK = topK;
    }

    /** {@code prefix.gate.weight}, {@code prefix.experts.e.{w1,w2,w3}} and {@code prefix.shared_experts.{w1,w2,w3}}. */
    public static MoeFeedForward load(StateDict sd, String prefix, long dim, long hidden, long sharedHidden, int numExperts, int topK, DType dtype) {
        Linear gate = sd.built(prefix + ".gate", new Linear(sd.take(prefix + ".gate.weight", dtype, numExperts, dim), null));
        List<SwiGlu> experts = new ArrayList<>();
        for (int e = 0; e < numExperts; e++) experts.add(SwiGlu.load(sd, prefix + ".experts." + e, dim, hidden, dtype));
        return new MoeFeedForward(gate, experts, SwiGlu.load(sd, prefix + ".shared_experts", dim, sharedHidden, dtype), topK);
    }

    public int numExperts() {
        return experts.size();
    }

    public int topK() {
        return topK;
    }

    /** Which experts each token picks and with what weight: {@code idx [T, k]} (int64) and {@code weights [T, k]}, scope temporaries. */
    public Tensor[] route(Tensor flat) { // flat [T, D]
        Tensor scores = softmax(gate.forward(flat), -1);                 // [T, E] in the activations' dtype
        T_TensorTensor_T top = scores.topk(topK, -1, true, false);
        return new Tensor[] {top.get1(), top.get0()};
    }

    /**
     * {@code [B, S, D] -> [B, S, D]} (any {@code [..., D]}: the leading dimension counts as rows): routed experts over their
     * tokens only, plus the shared expert. The routed GEMMs are grouped per batch row and expert, so a row's result does
     * not depend on the other rows' routing (a batch row is bit-identical to the same row alone, and a row whose input
     * is unchanged stays bit-identical when another row's changes).
     */
    public Tensor forward(Tensor x) {
        long d = x.size(-1);
        if (x.is_meta()) return metaForward(x, d);
        return Scopes.local(() -> {
            Tensor flat = x.reshape(-1, d);                                  // [T, D]
            int tokens = (int) flat.size(0);
            int rows = x.dim() >= 3 ? (int) x.size(0) : 1, perRow = tokens / rows;
            Tensor[] r = route(flat);
            long[] idx = longs(r[0].contiguous(), tokens * topK);            // token t, slot j -> expert
            Tensor weights = r[1].reshape(-1);                               // [T·k]
            Tensor acc = zeros_like(flat);                                   // accumulated from 0, experts in ascending order
            for (int row = 0; row < rows; row++) {
                int first = row * perRow * topK, end = first + perRow * topK;
                // tokens of each expert in ascending token order, with their flat (t·k + j) position for the weight
                int[] count = new int[experts.size()];
                for (int p = first; p < end; p++) count[(int) idx[p]]++;
                long[][] toks = new long[experts.size()][], slots = new long[experts.size()][];
                for (int e = 0; e < toks.length; e++) {
                    toks[e] = new long[count[e]];
                    slots[e] = new long[count[e]];
                }
                int[] fill = new int[experts.size()];
                for (int p = first; p < end; p++) {
                    int e = (int) idx[p];
                    toks[e][fill[e]] = p / topK;
                    slots[e][fill[e]++] = p;
                }
                for (int e = 0; e < experts.size(); e++) {
                    if (count[e] == 0) continue;
                    SwiGlu expert = experts.get(e);
                    long[] et = toks[e], es = slots[e];
                    try (PointerScope scope = new PointerScope()) {
                        Tensor tokenIdx = indexTensor(et, flat);
                        Tensor out = expert.forward(flat.index_select(0, tokenIdx));           // [n, D]
                        out.mul_(weights.index_select(0, indexTensor(es, flat)).unsqueeze(1));
                        acc.index_add_(0, tokenIdx, out);
                    }
                }
            }
            return acc.add_(shared_experts.forward(flat)).view(Tensors.shape(x));
        });
    }

    /**
     * Every expert on every token, each weighted by its routing weight (0 where not selected) and added in ascending
     * expert order: what {@link #forward} computes, at {@code E/k} times the expert FLOPs.
     */
    public Tensor forwardDense(Tensor x) {
        long d = x.size(-1);
        return Scopes.local(() -> {
            Tensor flat = x.reshape(-1, d);
            Tensor[] r = route(flat);
            Tensor dense = zeros(new long[] {flat.size(0), experts.size()}, flat.options()).scatter_(1, r[0], r[1]);   // [T, E]
            Tensor acc = zeros_like(flat);
            for (int e = 0; e < experts.size(); e++) {
                acc.add_(experts.get(e).forward(flat).mul_(dense.narrow(1, e, 1)));
            }
            return acc.add_(shared_experts.forward(flat)).view(Tensors.shape(x));
        });
    }

    /** Shapes and op counts only: balanced routing ({@code ⌈T·k/E⌉} tokens per expert). */
    private Tensor metaForward(Tensor x, long d) {
        Tensor flat = x.reshape(-1, d);
        long perExpert = (flat.size(0) * topK + experts.size() - 1) / experts.size();
        gate.forward(flat);
        Tensor routed = empty(new long[] {perExpert, d}, x.options(), new MemoryFormatOptional());
        for (SwiGlu e : experts) e.forward(routed);
        shared_experts.forward(flat);
        return empty(Tensors.shape(x), x.options(), new MemoryFormatOptional());
    }

    private static long[] longs(Tensor t, int n) {
        long[] out = new long[n];
        Tensor cpu = t.is_cpu() ? t.to(ScalarType.Long).contiguous() : t.to(new Device("cpu"), ScalarType.Long).contiguous();
        new LongPointer(cpu.data_ptr()).get(out);
        return out;
    }

    /** An int64 index tensor on the device of {@code like}. */
    private static Tensor indexTensor(long[] values, Tensor like) {
        Tensor t = empty(new long[] {values.length}, new TensorOptions(ScalarType.Long), new MemoryFormatOptional());
        new LongPointer(t.data_ptr()).put(values);
        return like.is_cpu() ? t : t.to(like.device(), ScalarType.Long);
    }

    @Override
    public void close() {
        gate.close();
        Modules.closeAll(experts);
        shared_experts.close();
    }
}
