package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/** Compares what a runner produced with a case's reference outputs, one result per {@code compare} entry. */
final class Outputs {
    private Outputs() {}

    static List<CaseResult> compare(GoldenCase c, String name, Map<String, Tensor> actual, SafetensorsFile expectedFile) {
        List<CaseResult> results = new ArrayList<>();
        for (Iterator<String> it = c.compare().fieldNames(); it.hasNext(); ) {
            String output = it.next();
            Tensor a = actual.get(output);
            if (a == null) {
                results.add(CaseResult.skip(name, output + " not produced by this runner"));
                continue;
            }
            if (expectedFile.info(output) == null) {
                results.add(CaseResult.error(name, output, "no reference tensor '" + output + "' in " + expectedFile.origin()));
                continue;
            }
            Tensor expected = expectedFile.load(output);
            try {
                results.add(CaseResult.of(name, Comparison.of(output, Tensors.toFloats(a), Tensors.shape(a),
                        Tensors.toFloats(expected), Tensors.shape(expected), c.atol(output), c.rtol(output))));
            } finally {
                expected.close();
            }
        }
        return results;
    }
}
