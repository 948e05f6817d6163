package io.mmdit4j.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenCase;
import io.mmdit4j.golden.SchedulerCases;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every {@code scheduler/} golden case through the check-golden runner, and bit-exactness of the schedules. */
class SchedulerGoldenTest {
    private static final Path CASES = GoldenData.root().resolve("scheduler/cases");

    static List<Path> cases() throws IOException {
        try (Stream<Path> s = Files.list(CASES)) {
            return s.filter(p -> Files.isRegularFile(p.resolve("case.json"))).sorted().collect(Collectors.toList());
        }
    }

    @Test
    void allTenCasesArePresent() throws IOException {
        assertEquals(10, cases().size(), "scheduler cases: " + cases());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void caseRunnerPassesEveryComparedOutput(Path dir) {
        GoldenCase c = GoldenCase.load(dir);
        assertEquals("flow_match_euler", c.kind());
        List<CaseResult> results = SchedulerCases.FLOW_MATCH_EULER.run(c);
        results.forEach(r -> System.out.println(r.line()));
        List<String> compared = iterable(c.compare());
        assertEquals(compared.size(), results.size(), "one result per compared output: " + results);
        for (CaseResult r : results) {
            assertEquals(CaseResult.Status.PASS, r.status(), r.line());
            assertTrue(compared.contains(r.output()), r.line());
        }
    }

    /** The sigmas and timesteps are not just within 1e-6: they are the reference's float32 values exactly. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void schedulesAreBitExact(Path dir) {
        GoldenCase c = GoldenCase.load(dir);
        FlowMatchSchedulerConfig config = FlowMatchSchedulerConfig.fromJson(c.spec().get("scheduler_config"), dir.toString());
        JsonNode p = c.params();
        boolean sd3 = p.path("image_seq_len").isNull();
        FlowMatchEulerScheduler scheduler = sd3 ? new FlowMatchEulerScheduler(config, FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT) : new FlowMatchEulerScheduler(config, FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N);
        Schedule s = scheduler.schedule(p.get("num_inference_steps").asInt(), sd3 ? null : p.get("image_seq_len").asInt());
        if (!sd3) assertEquals(p.get("mu").asDouble(), config.mu(p.get("image_seq_len").asInt()), 0.0, "calculate_shift");
        try (SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            float[] sigmas = Tensors.toFloats(out.load("sigmas"));
            float[] timesteps = Tensors.toFloats(out.load("timesteps"));
            assertArrayEquals(sigmas, s.sigmas(), 0f, "sigmas");
            assertArrayEquals(timesteps, s.timesteps(), 0f, "timesteps");
        }
    }

    /** The Euler trajectory in float32 is the reference's bit for bit as well. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void trajectoryIsBitExact(Path dir) {
        GoldenCase c = GoldenCase.load(dir);
        FlowMatchSchedulerConfig config = FlowMatchSchedulerConfig.fromJson(c.spec().get("scheduler_config"), dir.toString());
        JsonNode p = c.params();
        boolean sd3 = p.path("image_seq_len").isNull();
        FlowMatchEulerScheduler scheduler = sd3 ? new FlowMatchEulerScheduler(config, FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT) : new FlowMatchEulerScheduler(config, FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N);
        Schedule s = scheduler.schedule(p.get("num_inference_steps").asInt(), sd3 ? null : p.get("image_seq_len").asInt());
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            Tensor v = in.load("model_outputs");
            Tensor expected = out.load("trajectory");
            Tensor x = in.load("sample");
            double maxAbs = 0;
            for (int i = 0; i < s.steps(); i++) {
                Tensor next = s.step(v.select(0, i), i, x);
                scope.attach(next);
                next.releaseReference();
                float[] e = Tensors.toFloats(expected.select(0, i + 1)), a = Tensors.toFloats(next);
                for (int k = 0; k < e.length; k++) maxAbs = Math.max(maxAbs, Math.abs(e[k] - a[k]));
                x = next;
            }
            System.out.println(c.name() + " trajectory max_abs=" + maxAbs);
            assertEquals(0.0, maxAbs, "trajectory differs from the reference");
        }
    }

    private static List<String> iterable(JsonNode object) {
        List<String> names = new java.util.ArrayList<>();
        object.fieldNames().forEachRemaining(names::add);
        return names;
    }
}
