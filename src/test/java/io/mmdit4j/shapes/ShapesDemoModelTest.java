package io.mmdit4j.shapes;

import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bundled, trained shapes demo ({@code models/flux-shapes-demo}, made by {@code mmdit train --recipe shapes-demo}):
 * it loads by name with the settings it was trained with, and fixed seeds read back as they did when it was committed.
 */
class ShapesDemoModelTest {
    static final ShapesWorld WORLD = new ShapesWorld(64, 1, 4, 0);
    /** Recorded from the committed weights (background, objects found, their colour, their shape), seeds 1 and 2 per scene. */
    static final List<String> EXPECTED = List.of("BLUE 3 RED CIRCLE", "BLUE 3 RED CIRCLE", "RED 3 BLUE CIRCLE", "RED 3 BLUE CIRCLE",
            "WHITE 2 GREEN SQUARE", "WHITE 2 GREEN SQUARE", "BLACK 1 YELLOW TRIANGLE", "BLACK 1 YELLOW TRIANGLE", "GREY 4 WHITE SQUARE", "GREY 4 WHITE SQUARE",
            "YELLOW 2 BLACK CIRCLE", "YELLOW 2 BLACK CIRCLE");
    /** Of the 12 pictures when the weights were committed: backgrounds right, captions fully right (count, colour, shape). */
    static final int BACKGROUNDS = 12, CAPTIONS = 12;

    @Test
    void itsDefaultsAreTheTrainingRunsSettings() { // and true CFG 3 with an empty negative prompt: the most faithful colours
        GenerationSettings s = Pipelines.prepare("flux-shapes-demo", LoadOptions.defaults()).resolve(GenerationRequest.builder().prompt("a red circle").build());
        assertEquals(64, s.width());
        assertEquals(64, s.height());
        assertEquals(20, s.steps());
        assertEquals(16, s.maxSequenceLength(), "the T5 length it was trained with: other paddings change the prompt's tokens");
    }

    /** What the analyzer read in each picture: background, objects found, their colour and shape (the majority's). */
    static String reading(ShapesAnalyzer.Analysis a) {
        return a.background() + " " + a.count() + " " + a.colour() + " " + a.shape();
    }

    /**
     * Twelve fixed-seed pictures read back: the committed readings (recorded from the committed weights with the
     * descriptor's settings) must come back. A reading may differ where the
     * last bits of a forward differ between CPUs (AVX2, AVX-512), so one picture in twelve may read otherwise; a
     * model that ignores the prompt matches about 1 in 7 backgrounds and fewer readings.
     */
    @Test
    void fixedSeedsReadBackAsCommitted() {
        List<Scene> scenes = List.of(
                WORLD.scene(3, Scene.Size.SMALL, Scene.Palette.RED, Scene.Shape.CIRCLE, Scene.Palette.BLUE, 0),
                WORLD.scene(3, Scene.Size.SMALL, Scene.Palette.BLUE, Scene.Shape.CIRCLE, Scene.Palette.RED, 0), // the same words, roles swapped
                WORLD.scene(2, Scene.Size.LARGE, Scene.Palette.GREEN, Scene.Shape.SQUARE, Scene.Palette.WHITE, 0),
                WORLD.scene(1, Scene.Size.LARGE, Scene.Palette.YELLOW, Scene.Shape.TRIANGLE, Scene.Palette.BLACK, 0),
                WORLD.scene(4, Scene.Size.SMALL, Scene.Palette.WHITE, Scene.Shape.SQUARE, Scene.Palette.GREY, 0),
                WORLD.scene(2, Scene.Size.LARGE, Scene.Palette.BLACK, Scene.Shape.CIRCLE, Scene.Palette.YELLOW, 0));
        List<String> got = new ArrayList<>(), wrong = new ArrayList<>();
        int backgrounds = 0, captions = 0;
        try (Pipeline pipe = Pipelines.load("flux-shapes-demo")) {
            for (Scene scene : scenes) {
                String prompt = scene.caption(); // every attribute named: "three small red circles on a blue background"
                for (long seed = 1; seed <= 2; seed++) {
                    try (GenerationResult r = pipe.generate(GenerationRequest.builder().prompt(prompt).seed(seed).build(), step -> true)) {
                        ShapesAnalyzer.Analysis a = ShapesAnalyzer.analyze(r.image(0));
                        got.add(reading(a));
                        if (a.background() == scene.background()) backgrounds++;
                        if (ShapesAnalyzer.score(scene, a).countColourShape()) captions++;
                        else wrong.add(prompt + " (seed " + seed + "): " + reading(a));
                    }
                }
            }
        }
        assertEquals(EXPECTED.size(), got.size(), "readings: got " + got);
        int same = 0;
        for (int i = 0; i < got.size(); i++) if (got.get(i).equals(EXPECTED.get(i))) same++;
        assertTrue(same >= 11, same + " of 12 readings as committed; got " + got + ", committed " + EXPECTED);
        assertTrue(backgrounds >= BACKGROUNDS - 1, backgrounds + " of 12 backgrounds right");
        // the captions fully right (count, colour, shape of every object) are reported, not asserted: one object read
        // otherwise changes them, and the readings above already pin the pictures down
        System.err.println("flux-shapes-demo: " + captions + " of 12 captions fully right (" + CAPTIONS + " when committed); not: " + wrong);
    }

    @Test
    void itRunsEndToEndOnMeta() { // the shipped model's folder and defaults on the device-agnostic path: shapes only
        try (Pipeline pipe = Pipelines.load("flux-shapes-demo", LoadOptions.builder().device(io.mmdit4j.runtime.DeviceSpec.META).build());
             GenerationResult r = pipe.generate(GenerationRequest.builder().prompt("a red circle").seed(1L).build(), step -> true)) {
            assertTrue(r.isMeta());
            for (io.mmdit4j.runtime.Transfers.Counts c : io.mmdit4j.runtime.Transfers.lastLoop()) assertEquals(0, c.total(), c.toString());
        }
    }
}
