package io.mmdit4j.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.io.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static io.mmdit4j.sampling.NoiseTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reading {@code scheduler_config.json}: defaults, supported options, and clear rejection of the rest. */
class FlowMatchSchedulerConfigTest {

    static FlowMatchSchedulerConfig parse(String json) throws IOException {
        return FlowMatchSchedulerConfig.fromJson(new ObjectMapper().readTree(json), "test.json");
    }

    static void rejected(String json, String part) throws IOException {
        JsonNode node = new ObjectMapper().readTree(json);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> FlowMatchSchedulerConfig.fromJson(node, "test.json"));
        assertTrue(e.getMessage().startsWith("test.json: "), e.getMessage());
        assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' should contain '" + part + "'");
    }

    @Test
    void sd3FolderConfigHasTwoKeys() throws IOException {
        assertEquals(FlowMatchSchedulerConfig.sd3(), parse("{\"_class_name\": \"FlowMatchEulerDiscreteScheduler\", "
                + "\"_diffusers_version\": \"0.29.0.dev0\", \"num_train_timesteps\": 1000, \"shift\": 3.0}"));
        assertEquals(new FlowMatchSchedulerConfig(1000, 1.0, false, 0.5, 1.15, 256, 4096,
                FlowMatchSchedulerConfig.TimeShiftType.EXPONENTIAL), parse("{}"), "diffusers' defaults");
    }

    @Test
    void fullFluxConfigWithUnsetOptionsIsAccepted() throws IOException {
        assertEquals(FlowMatchSchedulerConfig.fluxDev(), parse("{\"base_image_seq_len\": 256, \"base_shift\": 0.5, "
                + "\"invert_sigmas\": false, \"max_image_seq_len\": 4096, \"max_shift\": 1.15, \"num_train_timesteps\": 1000, "
                + "\"shift\": 3.0, \"shift_terminal\": null, \"use_beta_sigmas\": false, \"use_dynamic_shifting\": true, "
                + "\"use_exponential_sigmas\": false, \"use_karras_sigmas\": false, \"time_shift_type\": \"exponential\", "
                + "\"stochastic_sampling\": false}"));
        assertEquals(FlowMatchSchedulerConfig.TimeShiftType.LINEAR,
                parse("{\"use_dynamic_shifting\": true, \"time_shift_type\": \"linear\"}").timeShiftType());
    }

    @Test
    void unsupportedOptionsAreRejected() throws IOException {
        rejected("{\"invert_sigmas\": true}", "invert_sigmas = true is not supported");
        rejected("{\"shift_terminal\": 0.1}", "shift_terminal = 0.1 is not supported");
        rejected("{\"use_karras_sigmas\": true}", "use_karras_sigmas");
        rejected("{\"use_exponential_sigmas\": true}", "use_exponential_sigmas");
        rejected("{\"use_beta_sigmas\": true}", "use_beta_sigmas");
        rejected("{\"stochastic_sampling\": true}", "stochastic_sampling");
        rejected("{\"time_shift_type\": \"cosine\"}", "time_shift_type 'cosine' is not supported");
        rejected("{\"some_new_option\": 2}", "unknown scheduler option some_new_option");
        rejected("{\"_class_name\": \"EulerDiscreteScheduler\"}", "only FlowMatchEulerDiscreteScheduler");
    }

    @Test
    void badValuesAreRejected() throws IOException {
        rejected("[]", "must be a JSON object");
        rejected("{\"shift\": \"3\"}", "shift must be a number");
        rejected("{\"shift\": 0}", "shift must be a finite number > 0");
        rejected("{\"shift\": -1.5}", "shift must be a finite number > 0");
        rejected("{\"num_train_timesteps\": 0}", "num_train_timesteps must be >= 1");
        rejected("{\"num_train_timesteps\": 1000.5}", "num_train_timesteps must be an integer");
        rejected("{\"use_dynamic_shifting\": \"yes\"}", "use_dynamic_shifting must be true or false");
        rejected("{\"use_dynamic_shifting\": true, \"base_image_seq_len\": 256, \"max_image_seq_len\": 256}",
                "base_image_seq_len != max_image_seq_len");
    }

    @Test
    void fromFileAcceptsTheFileTheSchedulerFolderOrTheModelFolder(@TempDir Path tmp) throws IOException {
        Path scheduler = Files.createDirectories(tmp.resolve("model/scheduler"));
        Files.writeString(scheduler.resolve("scheduler_config.json"), "{\"shift\": 3.0}");
        FlowMatchSchedulerConfig expected = FlowMatchSchedulerConfig.sd3();
        assertEquals(expected, FlowMatchSchedulerConfig.fromFile(scheduler.resolve("scheduler_config.json")));
        assertEquals(expected, FlowMatchSchedulerConfig.fromFile(scheduler));
        assertEquals(expected, FlowMatchSchedulerConfig.fromFile(tmp.resolve("model")));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> FlowMatchSchedulerConfig.fromFile(tmp.resolve("nothing")));
        assertTrue(e.getMessage().contains("cannot read scheduler config"), e.getMessage());
        Files.writeString(scheduler.resolve("scheduler_config.json"), "{\"shift\": ");
        assertThrows(ModelFormatException.class, () -> FlowMatchSchedulerConfig.fromFile(scheduler));
    }

    @Test
    void constructorChecks() {
        assertMessage(() -> FlowMatchSchedulerConfig.sd3().withShift(Double.NaN), "shift must be a finite number > 0");
        assertMessage(() -> new FlowMatchSchedulerConfig(1000, 1, false, Double.NaN, 1.15, 256, 4096,
                FlowMatchSchedulerConfig.TimeShiftType.EXPONENTIAL), "must be finite");
    }
}
