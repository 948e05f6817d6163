package io.mmdit4j.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static io.mmdit4j.sampling.NoiseTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Schedules: MODEL-SPEC test vectors, the pipelines' golden parameters, DMD2 sigma lists, and argument errors. */
class FlowMatchEulerSchedulerTest {
    private static final FlowMatchEulerScheduler SCHNELL = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxSchnell(), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N);
    private static final FlowMatchEulerScheduler DEV = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxDev(), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N);
    private static final FlowMatchEulerScheduler SD3 = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.sd3(), FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT);

    static JsonNode params(String area, String caseName) throws IOException {
        Path json = GoldenData.root().resolve(area).resolve("cases").resolve(caseName).resolve("case.json");
        return new ObjectMapper().readTree(Files.readString(json)).path("params");
    }

    static float[] floats(JsonNode array) {
        float[] f = new float[array.size()];
        for (int i = 0; i < f.length; i++) f[i] = (float) array.get(i).asDouble();
        return f;
    }

    static double[] doubles(JsonNode array) {
        double[] d = new double[array.size()];
        for (int i = 0; i < d.length; i++) d[i] = array.get(i).asDouble();
        return d;
    }

    // ---------------------------------------------------------------- MODEL-SPEC B.4, D.4, E.3 test vectors

    @Test
    void schnellIsThePlainLinspace() {
        Schedule s = SCHNELL.schedule(4, 4096);
        assertArrayEquals(new float[] {1f, 0.75f, 0.5f, 0.25f, 0f}, s.sigmas(), 0f);
        assertArrayEquals(new float[] {1000f, 750f, 500f, 250f}, s.timesteps(), 0f);
        assertEquals(SCHNELL.schedule(4, null), s, "no dynamic shifting: the sequence length does not matter");
    }

    @Test
    void devAt1024SquaredMatchesTheSpec() {
        assertEquals(1.15, FlowMatchSchedulerConfig.fluxDev().mu(4096), 1e-15);
        assertEquals(0.5, FlowMatchSchedulerConfig.fluxDev().mu(256), 1e-15);
        Schedule s = DEV.schedule(28, 4096);
        float[] expected = {1.0f, 0.9884086f, 0.9762225f, 0.9633944f, 0.9498726f, 0.9355989f};
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], s.sigma(i), 1e-7, "sigma " + i);
        assertEquals(0.1047209f, s.sigma(27), 1e-7);
        assertEquals(0f, s.sigma(28));
        assertEquals(28, s.steps());
    }

    @Test
    void sd3ShiftsTwice() {
        assertEquals(0.002994012f, SD3.sigmaMin(), 1e-9);
        assertEquals(1f, SD3.sigmaMax());
        Schedule s = SD3.schedule(28, null);
        float[] head = {1.0f, 0.9873806f, 0.9741077f, 0.9601293f};
        for (int i = 0; i < head.length; i++) assertEquals(head[i], s.sigma(i), 1e-7, "sigma " + i);
        assertEquals(0.1109057f, s.sigma(26), 1e-7);
        assertEquals(0.0089286f, s.sigma(27), 1e-7);
        assertEquals(987.3806f, s.timestep(1), 1e-3);
        // Shifting the unshifted linspace(1, 0.001, N) once would end elsewhere: the double shift matters.
        double once = 3 * 0.001 / (1 + 2 * 0.001);
        assertNotEquals((float) once, s.sigma(27));
    }

    @Test
    void hunyuanVideoStaticShiftSeven() {
        FlowMatchEulerScheduler h = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.sd3().withShift(7.0), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ZERO_EXCLUSIVE);
        Schedule s = h.schedule(50, null);
        assertEquals(1f, s.sigma(0));
        assertEquals(0.997093f, s.sigma(1), 1e-6);
        assertEquals(0.125f, s.sigma(49), 1e-6);
        assertEquals(0f, s.sigma(50));
    }

    // ---------------------------------------------------------------- the pipelines' golden parameters

    @Test
    void fluxPipelineGoldenSchedules() throws IOException {
        for (String name : new String[] {"schnell_plain", "dev_plain"}) {
            JsonNode p = params("flux_pipeline", name);
            FlowMatchEulerScheduler sch = name.startsWith("dev") ? DEV : SCHNELL;
            Schedule s = sch.schedule(p.get("num_inference_steps").asInt(), p.get("packed_tokens").asInt());
            assertArrayEquals(floats(p.get("timesteps")), s.timesteps(), 0f, name);
            assertArrayEquals(floats(p.get("sigmas")), s.sigmas(), 0f, name);
        }
        // The tiny pipeline's scheduler folders hold the real configs.
        Path models = GoldenData.root().resolve("flux_pipeline/models");
        assertEquals(FlowMatchSchedulerConfig.fluxSchnell(), FlowMatchSchedulerConfig.fromFile(models.resolve("flux-tiny-schnell")));
        assertEquals(FlowMatchSchedulerConfig.fluxDev(), FlowMatchSchedulerConfig.fromFile(models.resolve("flux-tiny-dev/scheduler")));
    }

    @Test
    void sd3PipelineGoldenSchedule() throws IOException {
        JsonNode p = params("sd3_pipeline", "cfg3.5_plain");
        FlowMatchSchedulerConfig config = FlowMatchSchedulerConfig.fromFile(
                GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large/scheduler/scheduler_config.json"));
        assertEquals(FlowMatchSchedulerConfig.sd3(), config);
        Schedule s = new FlowMatchEulerScheduler(config, FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT).schedule(p.get("num_inference_steps").asInt(), null);
        assertArrayEquals(floats(p.get("timesteps")), s.timesteps(), 0f);
        assertArrayEquals(floats(p.get("sigmas")), s.sigmas(), 0f);
    }

    // ---------------------------------------------------------------- DMD2: explicit sigmas reach the model unshifted

    @Test
    void dmd2SigmasReachTheModelUnshifted() throws IOException {
        JsonNode p = params("sd3_pipeline", "dmd2_sigmas_nocfg");
        double[] argument = doubles(p.get("sigmas_argument"));   // without the terminal 0
        double[] recipe = doubles(p.get("recipe_sigmas"));       // with it
        float[] timesteps = floats(p.get("timesteps"));
        float[] sigmas = floats(p.get("sigmas"));

        Schedule a = SD3.fromSigmas(argument);
        Schedule b = SD3.fromSigmas(recipe);
        assertEquals(a, b, "the terminal 0 is appended when absent");
        assertEquals(6, a.steps());
        assertArrayEquals(sigmas, a.sigmas(), 0f);
        assertArrayEquals(timesteps, a.timesteps(), 0f);
        for (int i = 0; i < a.steps(); i++) assertEquals((float) argument[i] * 1000f, a.timestep(i), 0f, "timesteps = sigmas[:-1]·1000");

        // diffusers' set_timesteps(sigmas=...) with the folder's shift 3 would shift them (in float32): the naive timesteps.
        Schedule naive = SD3.setTimesteps(null, argument, null);
        assertArrayEquals(floats(p.get("naive_shift3_timesteps")), naive.timesteps(), 0f);
        // ... and with the case's scheduler_override shift 1 it is the recipe again.
        double overrideShift = p.path("scheduler_override").path("shift").asDouble();
        Schedule overridden = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.sd3().withShift(overrideShift), FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT).setTimesteps(null, argument, null);
        assertEquals(a, overridden);
    }

    // ---------------------------------------------------------------- errors

    @Test
    void badStepCountsAndSequenceLengths() {
        assertMessage(() -> SCHNELL.schedule(0, 4096), "must be >= 1, got 0");
        assertMessage(() -> SD3.schedule(-3, null), "must be >= 1, got -3");
        assertMessage(() -> DEV.schedule(28, null), "dynamic shifting");
        assertMessage(() -> DEV.schedule(28, 0), "image sequence length must be >= 1");
        assertMessage(() -> DEV.setTimesteps(null, new double[] {1, 0.5}, null), "mu is required");
        assertMessage(() -> SD3.setTimesteps(null, null, null), "must be >= 1");
        assertMessage(() -> SD3.setTimesteps(null, new double[] {}, null), "must not be empty");
        assertMessage(() -> SD3.setTimesteps(null, new double[] {1, Double.NaN}, null), "NaN");
        assertMessage(() -> DEV.setTimesteps(null, new double[] {1, 0.5}, Double.NaN), "mu must be finite");
    }

    @Test
    void badExplicitSigmaLists() {
        assertMessage(() -> SD3.fromSigmas(null), "must not be empty");
        assertMessage(() -> SD3.fromSigmas(new double[] {}), "must not be empty");
        assertMessage(() -> SD3.fromSigmas(new double[] {0.0}), "no step");
        assertMessage(() -> SD3.fromSigmas(new double[] {1.0, Double.NaN, 0.0}), "must be finite");
        assertMessage(() -> SD3.fromSigmas(new double[] {1.0, Double.POSITIVE_INFINITY}), "must be finite");
        assertMessage(() -> SD3.fromSigmas(new double[] {1.0, 0.5, 0.7, 0.0}), "decrease strictly");
        assertMessage(() -> SD3.fromSigmas(new double[] {1.0, 1.0, 0.0}), "decrease strictly");
        assertMessage(() -> SD3.fromSigmas(new double[] {1.5, 0.5}), "outside [0, 1]");
        assertMessage(() -> SD3.fromSigmas(new double[] {0.5, -0.1}), "outside [0, 1]");
        assertMessage(() -> SD3.fromSigmas(new double[] {0.5, 0.50000001}), "decrease strictly");
        assertMessage(() -> SD3.fromSigmas(new double[] {0.5, 0.5 - 1e-12}), "equal in float32");
        assertMessage(() -> SD3.fromSigmas(new double[] {1.0, 1e-50}), "rounds to 0");
    }

    @Test
    void scheduleAccessorsCheckTheirIndex() {
        Schedule s = SCHNELL.schedule(2, null);
        assertEquals(-0.5f, s.dt(0));
        assertEquals(0f, s.sigma(2));
        assertThrows(IndexOutOfBoundsException.class, () -> s.timestep(2));
        assertThrows(IndexOutOfBoundsException.class, () -> s.dt(-1));
        assertThrows(IndexOutOfBoundsException.class, () -> s.sigma(3));
        assertMessage(() -> new Schedule(new float[] {1f, 0f}, new float[] {1000f, 0f}), "needs 3 sigmas");
        assertMessage(() -> new Schedule(new float[] {1f, Float.NaN}, new float[] {1000f}), "sigma 1 is NaN");
    }

    @Test
    void calculateShiftFollowsTheReference() {
        assertEquals(0.63, FlowMatchEulerScheduler.calculateShift(1024), 0.0);
        assertEquals(0.4607291666666667, FlowMatchEulerScheduler.calculateShift(24), 0.0);
        assertEquals(1.15, FlowMatchEulerScheduler.calculateShift(4096), 0.0);
        assertMessage(() -> FlowMatchEulerScheduler.calculateShift(10, 256, 256, 0.5, 1.15), "must differ");
    }

    @Test
    void numpyLinspace() {
        assertArrayEquals(new double[] {1.0}, FlowMatchEulerScheduler.linspace(1.0, 0.25, 1), 0.0);
        assertArrayEquals(new double[] {1.0, 0.75, 0.5, 0.25}, FlowMatchEulerScheduler.linspace(1.0, 0.25, 4), 0.0);
        assertArrayEquals(new double[] {}, FlowMatchEulerScheduler.linspace(1.0, 0.0, 0), 0.0);
        assertArrayEquals(new double[] {2.0, 2.0, 2.0}, FlowMatchEulerScheduler.linspace(2.0, 2.0, 3), 0.0);
    }
}
