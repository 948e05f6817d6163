package io.mmdit4j.sd3;

import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** models/sd3.5-*.json: family sd3, a known configuration, guidance schedules valid at the real depth. */
class Sd3DescriptorsTest {
    private static final ModelRegistry REGISTRY = new ModelRegistry(Path.of("."), null);

    @Test
    void sd35DescriptorsNameTheirConfigsAndValidGuidance() {
        for (String name : new String[] {"sd3.5-large", "sd3.5-medium"}) {
            ModelDescriptor d = REGISTRY.descriptor(name);
            assertNotNull(d, name);
            assertEquals("sd3", d.family());
            Sd3Config c = Sd3Config.named(name);
            assertNotNull(c, name);
            assertFalse(d.recommendedGuidance().isEmpty());
            d.recommendedGuidance().forEach(g -> LayerSchedule.parse(g.layers()).factors(c.numGuidedBlocks()));
            assertEquals(3.0, d.defaults().path("scheduler").path("shift").asDouble());
        }
        assertEquals(2.0, REGISTRY.descriptor("sd3.5-large").recommendedGuidance().get(0).w(), "METHOD: SD3.5-Large w 2, start 2");
        assertEquals("2-", REGISTRY.descriptor("sd3.5-large").recommendedGuidance().get(0).layers());
    }

    @Test
    void missingWeightsGiveDownloadInstructions(@TempDir Path empty) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ModelRegistry(Path.of("."), empty).resolve("sd3.5-large"));
        assertTrue(e.getMessage().contains("stabilityai/stable-diffusion-3.5-large") && e.getMessage().contains("MMDIT_MODELS"), e.getMessage());
    }
}
