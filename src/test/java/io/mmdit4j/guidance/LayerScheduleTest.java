package io.mmdit4j.guidance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class LayerScheduleTest {
    /** FLUX: 19 double blocks + 38 single blocks. */
    private static final int FLUX = 57;

    private static double[] ones(int n, int from, int toInclusive, double value) {
        double[] out = new double[n];
        Arrays.fill(out, from, toInclusive + 1, value);
        return out;
    }

    private static double hann(double d, double r) {
        return Math.abs(d) < r ? 0.5 * (1 + Math.cos(Math.PI * d / r)) : 0;
    }

    // ------------------------------------------------------------------------------------------ simple forms

    @Test
    void allIsOneEverywhere() {
        assertArrayEquals(new double[] {1, 1, 1, 1, 1}, LayerSchedule.all().factors(5));
        assertArrayEquals(ones(FLUX, 0, 56, 1), LayerSchedule.all().factors(FLUX));
        assertEquals(LayerSchedule.all(), LayerSchedule.parse("all"));
        assertEquals(LayerSchedule.all(), LayerSchedule.parse("0-"));
        assertEquals(LayerSchedule.all(), LayerSchedule.parse("  ALL "));
        assertEquals(LayerSchedule.all(), LayerSchedule.from(0));
        assertEquals("all", LayerSchedule.from(0).toString());
        assertFalse(LayerSchedule.all().isZero());
    }

    @Test
    void noneIsZeroEverywhere() {
        assertArrayEquals(new double[5], LayerSchedule.none().factors(5));
        assertArrayEquals(new double[FLUX], LayerSchedule.parse("none").factors(FLUX));
        assertEquals("none", LayerSchedule.none().toString());
        assertEquals(LayerSchedule.none(), LayerSchedule.parse(" none "));
        assertEquals(LayerSchedule.none(), LayerSchedule.parse("none:3"));
        assertTrue(LayerSchedule.none().isZero());
    }

    @Test
    void stepS1StartsAtTheGivenLayer() {
        assertArrayEquals(new double[] {0, 0, 0, 1, 1}, LayerSchedule.from(3).factors(5));
        assertArrayEquals(new double[] {0, 0, 0, 0, 1}, LayerSchedule.parse("4-").factors(5));
        assertArrayEquals(ones(FLUX, 19, 56, 1), LayerSchedule.parse("19-").factors(FLUX));
        assertEquals("5-", LayerSchedule.from(5).toString());
        assertEquals(LayerSchedule.from(5), LayerSchedule.parse(" 5 - "));
    }

    @Test
    void intervalS2IsInclusive() {
        assertArrayEquals(new double[] {0, 1, 1, 1, 0}, LayerSchedule.interval(1, 3).factors(5));
        assertArrayEquals(ones(FLUX, 2, 7, 1), LayerSchedule.parse("2-7").factors(FLUX));
        assertArrayEquals(ones(FLUX, 0, 18, 1), LayerSchedule.parse("0-18").factors(FLUX));
        assertEquals("2-7", LayerSchedule.interval(2, 7).toString());
        assertEquals(LayerSchedule.interval(2, 7), LayerSchedule.parse("2 - 7"));
        assertEquals(LayerSchedule.layer(7), LayerSchedule.interval(7, 7));
        assertEquals("7", LayerSchedule.interval(7, 7).toString());
    }

    @Test
    void singleLayer() {
        assertArrayEquals(new double[] {0, 0, 1, 0, 0}, LayerSchedule.layer(2).factors(5));
        assertArrayEquals(ones(FLUX, 56, 56, 1), LayerSchedule.parse("56").factors(FLUX));
        assertEquals("7", LayerSchedule.layer(7).toString());
        assertEquals(LayerSchedule.layer(7), LayerSchedule.parse("7"));
    }

    @Test
    void bumpS3IsAHannWindowPeakingAtTheCentre() {
        // cos(+-pi/2) is ~6e-17, which vanishes when added to 1, so these are exact.
        assertArrayEquals(new double[] {0, 0.5, 1, 0.5, 0}, LayerSchedule.bump(2, 2).factors(5));
        assertArrayEquals(new double[] {0, 0, 0, 0, 1}, LayerSchedule.parse("4~1").factors(5));

        double[] f = LayerSchedule.parse("20~6").factors(FLUX);
        assertEquals(1.0, f[20]);
        assertEquals(0.0, f[14]);
        assertEquals(0.0, f[26]);
        assertEquals(0.5, f[17], 1e-15);
        assertEquals(0.75, f[18], 1e-15);
        assertEquals(f[18], f[22], 1e-15);
        double[] expected = new double[FLUX];
        for (int l = 0; l < FLUX; l++) expected[l] = hann(l - 20, 6);
        assertArrayEquals(expected, f, 1e-15);
        assertEquals(0.0, Arrays.stream(f, 0, 15).sum());
        assertEquals(0.0, Arrays.stream(f, 26, FLUX).sum());

        double[] fractional = LayerSchedule.parse("20~6.5").factors(FLUX);
        assertEquals(hann(6, 6.5), fractional[14], 1e-15);
        assertTrue(fractional[14] > 0);
        assertEquals(0.0, fractional[13]);
        assertEquals("20~6.5", LayerSchedule.bump(20, 6.5).toString());
        assertEquals("20~6", LayerSchedule.bump(20, 6).toString());
    }

    @Test
    void bumpTailsMayReachPastEitherEnd() {
        double[] high = LayerSchedule.bump(55, 4).factors(FLUX);
        assertEquals(1.0, high[55]);
        assertEquals(hann(1, 4), high[56], 1e-15);
        assertEquals(hann(-3, 4), high[52], 1e-15);
        assertEquals(0.0, high[51]);
        double[] low = LayerSchedule.bump(0, 2).factors(5);
        assertArrayEquals(new double[] {1, 0.5, 0, 0, 0}, low);
    }

    @Test
    void perLayerList() {
        LayerSchedule list = LayerSchedule.perLayer(0, 0, 1, 1.5);
        assertArrayEquals(new double[] {0, 0, 1, 1.5, 0}, list.factors(5));
        assertArrayEquals(new double[] {0, 0, 1, 1.5}, list.factors(4));
        double[] flux = new double[FLUX];
        flux[2] = 1;
        flux[3] = 1.5;
        assertArrayEquals(flux, list.factors(FLUX));
        assertEquals("list:0,0,1,1.5", list.toString());
        assertEquals(list, LayerSchedule.parse("list:0,0,1,1.5"));
        assertEquals(list, LayerSchedule.parse(" LIST : 0 , 0, 1 ,1.5 "));
        assertEquals(LayerSchedule.perLayer(-2, 0.25), LayerSchedule.parse("list:-2,.25"));
        // trailing zeros past the model's end are harmless
        assertArrayEquals(new double[] {1, 0}, LayerSchedule.perLayer(1, 0, 0, 0).factors(2));
    }

    @Test
    void perLayerCopiesItsInputAndFactorsAreFresh() {
        double[] input = {1, 2};
        LayerSchedule list = LayerSchedule.perLayer(input);
        input[0] = 99;
        double[] f = list.factors(2);
        assertArrayEquals(new double[] {1, 2}, f);
        f[1] = 42;
        assertArrayEquals(new double[] {1, 2}, list.factors(2));
    }

    // -------------------------------------------------------------------------------- combining and scaling

    @Test
    void multiIntervalS4FromThePaper() {
        LayerSchedule s4 = LayerSchedule.parse("13-30:3,31-45:1");
        double[] expected = ones(FLUX, 13, 30, 3);
        Arrays.fill(expected, 31, 46, 1);
        assertArrayEquals(expected, s4.factors(FLUX));
        assertEquals("13-30:3,31-45", s4.toString());
        assertEquals(LayerSchedule.interval(13, 30).times(3).plus(LayerSchedule.interval(31, 45)), s4);
    }

    @Test
    void overlappingItemsAddUp() {
        double[] f = LayerSchedule.parse("13-30:3,30-45:1").factors(FLUX);
        assertEquals(0.0, f[12]);
        assertEquals(3.0, f[29]);
        assertEquals(4.0, f[30]);
        assertEquals(1.0, f[31]);
        assertEquals(1.0, f[45]);
        assertEquals(0.0, f[46]);

        assertArrayEquals(new double[] {1, 1, 2, 2, 1}, LayerSchedule.parse("all,2-3").factors(5));
        assertArrayEquals(new double[] {1, 1, 0, 0, 0}, LayerSchedule.parse("all,2-:-1").factors(5));
        assertArrayEquals(new double[] {0, 0.5, 2, 0.5, 0},
                LayerSchedule.bump(2, 2).plus(LayerSchedule.layer(2)).factors(5));
    }

    @Test
    void timesScalesEveryItem() {
        LayerSchedule scaled = LayerSchedule.interval(13, 30).times(3);
        assertEquals("13-30:3", scaled.toString());
        assertArrayEquals(ones(FLUX, 13, 30, 3), scaled.factors(FLUX));
        assertEquals(LayerSchedule.parse("13-30:3"), scaled);

        LayerSchedule two = LayerSchedule.parse("1:2,3-:0.5").times(-2);
        assertEquals("1:-4,3-:-1", two.toString());
        assertArrayEquals(new double[] {0, -4, 0, -1, -1}, two.factors(5));

        assertEquals("2~2:0.5", LayerSchedule.bump(2, 2).times(0.5).toString());
        assertArrayEquals(new double[] {0, 0.25, 0.5, 0.25, 0}, LayerSchedule.bump(2, 2).times(0.5).factors(5));
        assertEquals("list:0,2,-3", LayerSchedule.perLayer(0, 1, -1.5).times(2).toString());
        assertEquals(LayerSchedule.all(), LayerSchedule.all().times(1));
        assertEquals(LayerSchedule.parse("5-:4"), LayerSchedule.parse("5-:2").times(2));
    }

    @Test
    void plusJoinsItemsAndNoneIsTheIdentity() {
        LayerSchedule a = LayerSchedule.from(5);
        LayerSchedule b = LayerSchedule.layer(2).times(2);
        assertEquals("5-,2:2", a.plus(b).toString());
        assertEquals(a, a.plus(LayerSchedule.none()));
        assertEquals(a, LayerSchedule.none().plus(a));
        assertNotEquals(a.plus(b), b.plus(a)); // structural: item order matters for equality...
        assertArrayEquals(a.plus(b).factors(FLUX), b.plus(a).factors(FLUX)); // ...but not for the factors
    }

    @Test
    void listsOnlyAddToLists() {
        LayerSchedule sum = LayerSchedule.perLayer(1, 2).plus(LayerSchedule.perLayer(0.5, 0, 3));
        assertEquals(LayerSchedule.perLayer(1.5, 2, 3), sum);
        assertEquals("list:1.5,2,3", sum.toString());
        LayerSchedule list = LayerSchedule.perLayer(1);
        assertEquals(list, list.plus(LayerSchedule.none()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> list.plus(LayerSchedule.from(3)));
        assertTrue(e.getMessage().contains("list:"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.from(3).plus(list));
    }

    @Test
    void isZero() {
        assertTrue(LayerSchedule.none().isZero());
        assertTrue(LayerSchedule.all().times(0).isZero());
        assertTrue(LayerSchedule.parse("5-:0,none,3~2:0").isZero());
        assertTrue(LayerSchedule.perLayer(0, 0).isZero());
        assertFalse(LayerSchedule.parse("5-:0,3").isZero());
        assertFalse(LayerSchedule.perLayer(0, 0.1).isZero());
        assertFalse(LayerSchedule.bump(3, 0.5).isZero());
        assertEquals("5-:0", LayerSchedule.from(5).times(0).toString());
        assertArrayEquals(new double[5], LayerSchedule.parse("2-:0").factors(5));
    }

    @Test
    void negativeZeroIsNormalized() {
        assertEquals(LayerSchedule.from(5).times(0), LayerSchedule.from(5).times(-0.0));
        assertEquals(LayerSchedule.parse("5-:0"), LayerSchedule.parse("5-:-0"));
        assertEquals(LayerSchedule.perLayer(0.0), LayerSchedule.perLayer(-0.0));
        assertEquals(0.0, LayerSchedule.perLayer(-1).times(0).factors(1)[0]);
        assertEquals(Double.doubleToLongBits(0.0),
                Double.doubleToLongBits(LayerSchedule.perLayer(-1).times(0).factors(1)[0]));
    }

    @Test
    void factorConvenience() {
        LayerSchedule s = LayerSchedule.parse("13-30:3,30-45:1");
        assertEquals(4.0, s.factor(30, FLUX));
        assertEquals(0.0, s.factor(0, FLUX));
        assertThrows(IllegalArgumentException.class, () -> s.factor(57, FLUX));
        assertThrows(IllegalArgumentException.class, () -> s.factor(-1, FLUX));
    }

    // ------------------------------------------------------------------------------------------ round trips

    @Test
    void toStringRoundTripsThroughParse() {
        List<LayerSchedule> schedules = List.of(
                LayerSchedule.all(), LayerSchedule.none(), LayerSchedule.from(19), LayerSchedule.interval(2, 7),
                LayerSchedule.layer(7), LayerSchedule.bump(20, 6), LayerSchedule.bump(20, 6.5),
                LayerSchedule.bump(0, 0.1), LayerSchedule.perLayer(0, 0, 1, 1.5),
                LayerSchedule.perLayer(0.1, -2.5, 1e-7, 3e20, 1.0 / 3),
                LayerSchedule.interval(13, 30).times(3).plus(LayerSchedule.interval(31, 45)),
                LayerSchedule.all().plus(LayerSchedule.from(5).times(-1)),
                LayerSchedule.from(3).times(0.1), LayerSchedule.layer(4).times(1e-300),
                LayerSchedule.layer(4).times(-1.7e300), LayerSchedule.layer(4).times(1.0 / 3),
                LayerSchedule.bump(10, 1.0 / 7).times(1e15 + 0.5), LayerSchedule.from(5).times(0),
                LayerSchedule.all().times(2).plus(LayerSchedule.bump(30, 4).times(-0.25)).plus(LayerSchedule.layer(1)));
        for (LayerSchedule s : schedules) {
            String text = s.toString();
            LayerSchedule back = LayerSchedule.parse(text);
            assertEquals(s, back, text);
            assertEquals(s.hashCode(), back.hashCode(), text);
            assertEquals(text, back.toString());
            assertArrayEquals(s.factors(FLUX), back.factors(FLUX), text);
        }
    }

    @Test
    void canonicalTextIsStable() {
        for (String text : List.of("all", "none", "5-", "2-7", "7", "20~6", "20~6.5", "13-30:3,31-45",
                "13-30:3,30-45", "list:0,0,1,1.5", "all,5-:-1", "3-:0.1", "1~2.5:-0.75,4")) {
            assertEquals(text, LayerSchedule.parse(text).toString());
        }
        assertEquals("13-30:3,31-45", LayerSchedule.parse(" 13 - 30 : 3 , 31-45:1.0 ").toString());
        assertEquals("all", LayerSchedule.parse("0-").toString());
        assertEquals("5-", LayerSchedule.parse("none,5-").toString());
        assertEquals("5-:0.5", LayerSchedule.parse("5-:5e-1").toString());
        assertEquals("list:1,0.5", LayerSchedule.parse("list:1.00,+.5").toString());
    }

    // ------------------------------------------------------------------------------------------- parse errors

    private static void assertParseError(String input, String... hints) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LayerSchedule.parse(input), input);
        String message = e.getMessage();
        assertTrue(message.startsWith("layer schedule \"" + input + "\": "), message);
        for (String hint : hints) {
            assertTrue(message.contains(hint), "\"" + message + "\" should contain \"" + hint + "\"");
        }
    }

    @Test
    void badItemMessageNamesInputItemAndExpectation() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LayerSchedule.parse("5-x"));
        assertEquals("layer schedule \"5-x\": bad item \"5-x\": expected N, N-, N-M, C~R, all or none,"
                + " optionally followed by :factor", e.getMessage());
        assertParseError("all,5-x:2", "bad item \"5-x:2\"", "expected N, N-, N-M, C~R");
    }

    @Test
    void emptyInputOrItem() {
        assertParseError("", "empty", "expected");
        assertParseError("   ", "empty", "expected");
        assertParseError("5-,,7", "item 2 is empty", "expected N, N-");
        assertParseError(",5-", "item 1 is empty");
        assertParseError("5-,", "item 2 is empty");
    }

    @Test
    void badLayers() {
        assertParseError("-3", "item \"-3\"", "non-negative");
        assertParseError("5--3", "item \"5--3\"", "non-negative");
        assertParseError("-3-", "non-negative");
        assertParseError("-3-5", "non-negative");
        assertParseError("2--5-", "non-negative");
        assertParseError("-x", "bad item \"-x\"");
        assertParseError("2.5-", "item \"2.5-\"", "not a whole number");
        assertParseError("2-7.5", "not a whole number");
        assertParseError("9-3", "interval \"9-3\"", "before it starts", "write 3-9");
        assertParseError("99999999999-", "too large");
        assertParseError("foo", "bad item \"foo\"", "expected N, N-, N-M, C~R, all or none");
        assertParseError("all-", "bad item \"all-\"");
        assertParseError("5-7-9", "bad item \"5-7-9\"");
        assertParseError("-", "bad item \"-\"");
        assertParseError("5 7", "bad item \"5 7\"");
    }

    @Test
    void badFactors() {
        assertParseError("5-:abc", "bad factor \"abc\"", "item \"5-:abc\"", "finite decimal");
        assertParseError("5-:", "item \"5-:\"", "missing its factor", "finite decimal");
        assertParseError("5-:NaN", "bad factor \"NaN\"", "finite decimal");
        assertParseError("5-:Infinity", "bad factor \"Infinity\"", "finite decimal");
        assertParseError("5-:-Infinity", "bad factor");
        assertParseError("5-:1e999", "bad factor \"1e999\"");
        assertParseError("5-:2:3", "bad factor \"2:3\"");
        assertParseError("5-:0x10", "bad factor");
        assertParseError("5-:2d", "bad factor");
        assertParseError("none:abc", "bad factor");
    }

    @Test
    void badBumps() {
        assertParseError("20~0", "bump \"20~0\"", "radius must be > 0");
        assertParseError("20~-1", "bump \"20~-1\"", "radius must be > 0");
        assertParseError("~5", "bump \"~5\"", "centre");
        assertParseError("20~", "bump \"20~\"", "radius");
        assertParseError("20~x", "bad bump radius \"x\"", "> 0");
        assertParseError("20~NaN", "bad bump radius");
        assertParseError("-20~3", "non-negative");
        assertParseError("2.5~3", "not a whole number");
        assertParseError("20~6:", "missing its factor");
    }

    @Test
    void badLists() {
        assertParseError("list:", "list: needs at least one number");
        assertParseError("list:  ", "list: needs at least one number");
        assertParseError("list:1,x", "bad list entry 1 \"x\"", "finite decimal");
        assertParseError("list:1,NaN", "bad list entry 1");
        assertParseError("list:1,,2", "list entry 1 is empty");
        assertParseError("list:1,5-", "bad list entry 1 \"5-\"", "whole schedule");
        assertParseError("5-,list:1,2", "item \"list:1\"", "whole schedule");
        assertParseError("list", "item \"list\"", "whole schedule");
    }

    @Test
    void parseNeverThrowsAnythingButIllegalArgument() {
        assertThrows(NullPointerException.class, () -> LayerSchedule.parse(null));
        String[] odd = {"", " ", ",", ":", "~", "-", "--", ":::", "~~", "1~~2", "1:2:3", "list", "list:", "list:,",
                "list::", "LIST:1", "list:1:2", "all:", "none,", ",none", "a-b", "1-b", "b-1", "0x10", "1e3", "+5",
                "5-+3", "１２", "٣", "\u00a05\u00a0", "\t7\n", "5-\n:2", "\"5\"", "5;6", "5 - 7 : 2", "2147483647",
                "2147483648", "2147483647-", "0-2147483647", "0~1e308", "0~1e-320", "0~4.9e-324", "1:1e308,1:1e308",
                "5-:-0", "0~.5", "3~5.", "NaN", "Infinity", "1~Infinity", "null", "all,all,all", "\u0000",
                "list:1e308,1e308", "1.5", "1e1-", "5-:1.7976931348623157E309"};
        for (String text : odd) {
            LayerSchedule parsed;
            try {
                parsed = LayerSchedule.parse(text);
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage().contains("\"" + text + "\""), expected.getMessage());
                continue;
            } catch (RuntimeException | Error other) {
                throw new AssertionError("parse(\"" + text + "\") threw " + other, other);
            }
            assertEquals(parsed, LayerSchedule.parse(parsed.toString()), text);
            try {
                parsed.factors(FLUX);
                parsed.factors(1);
                parsed.isZero();
            } catch (IllegalArgumentException fine) {
                // out of range or an overflowing sum: reported, not crashed
            } catch (RuntimeException | Error other) {
                fail("resolving \"" + text + "\" threw " + other);
            }
        }
    }

    @Test
    void someOddInputsAreValid() {
        assertEquals(LayerSchedule.layer(7), LayerSchedule.parse("\t7\n"));
        assertEquals(LayerSchedule.interval(5, 7).times(2), LayerSchedule.parse("5 - 7 : 2"));
        assertEquals(LayerSchedule.from(5).times(2), LayerSchedule.parse("5-\n:2"));
        assertEquals(LayerSchedule.bump(0, 0.5), LayerSchedule.parse("0~.5"));
        assertEquals(LayerSchedule.perLayer(1), LayerSchedule.parse("LIST:1"));
    }

    // -------------------------------------------------------------------------------------- factory errors

    @Test
    void factoriesRejectInvalidArguments() {
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.from(-1));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.layer(-1));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.interval(-1, 3));
        IllegalArgumentException reversed = assertThrows(IllegalArgumentException.class,
                () -> LayerSchedule.interval(9, 3));
        assertTrue(reversed.getMessage().contains("before"), reversed.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.bump(20, 0));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.bump(20, -1));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.bump(20, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.bump(20, Double.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.bump(-1, 3));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.perLayer());
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.perLayer(1, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.all().times(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.all().times(Double.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.all().times(1e200).times(1e200));
        assertThrows(IllegalArgumentException.class, () -> LayerSchedule.all().factors(0));
    }

    // ----------------------------------------------------------------------------------------- range errors

    private static void assertOutOfRange(LayerSchedule schedule, int numLayers, String expectedMessage) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> schedule.factors(numLayers), schedule.toString());
        assertEquals(expectedMessage, e.getMessage());
    }

    @Test
    void anOpenRangePastTheLastBlockSelectsNothingWithAWarningAsTheReferenceDoes() {
        // the reference guides block idx when start_layer <= idx: nothing matches, so schedules written for FLUX's 57
        // blocks travel to smaller models
        assertArrayEquals(new double[5], LayerSchedule.parse("7-").factors(5));
        assertEquals("layer schedule \"7-\": 7- starts past the last block of this model's 5 blocks (0..4) and selects no block",
                LayerSchedule.parse("7-").unreachable(5));
        assertArrayEquals(new double[] {0, 0, 1, 1, 1}, LayerSchedule.parse("2-3,9-:2,4").factors(5), "the other items still apply");
        assertTrue(LayerSchedule.parse("2-3,9-:2,4").unreachable(5).contains("9-:2"));
        assertEquals(null, LayerSchedule.parse("5-").unreachable(57));
        assertEquals(null, LayerSchedule.parse("9-:0").unreachable(5), "a zero factor selects nothing anyway");
    }

    @Test
    void indicesOutsideTheModelAreReported() {
        assertOutOfRange(LayerSchedule.parse("57"), FLUX,
                "layer schedule \"57\": layer 57 is outside this model's 57 blocks (0..56)");
        assertOutOfRange(LayerSchedule.parse("2-60"), FLUX,
                "layer schedule \"2-60\": layer 60 is outside this model's 57 blocks (0..56)");
        assertOutOfRange(LayerSchedule.parse("60~3"), FLUX,
                "layer schedule \"60~3\": bump centre 60 is outside this model's 57 blocks (0..56)");
        assertOutOfRange(LayerSchedule.parse("13-30:3,31-60"), FLUX,
                "layer schedule \"13-30:3,31-60\": item \"31-60\": layer 60 is outside this model's 57 blocks"
                        + " (0..56)");
        assertOutOfRange(LayerSchedule.parse("list:0,0,1,1.5"), 3,
                "layer schedule \"list:0,0,1,1.5\": list entry 3 (1.5) is outside this model's 3 blocks (0..2)");
        assertOutOfRange(LayerSchedule.parse("5-7"), 5,
                "layer schedule \"5-7\": layer 5 is outside this model's 5 blocks (0..4)");
        assertOutOfRange(LayerSchedule.parse("1"), 1,
                "layer schedule \"1\": layer 1 is outside this model's 1 block (0..0)");

        // fine: within range, or only the bump's tail reaches past the end, or a zero list tail
        assertArrayEquals(ones(5, 4, 4, 1), LayerSchedule.parse("4-").factors(5));
        assertEquals(1.0, LayerSchedule.parse("56~10").factors(FLUX)[56]);
        assertArrayEquals(new double[] {0, 0, 1}, LayerSchedule.parse("list:0,0,1,0").factors(3));
        assertArrayEquals(new double[] {1}, LayerSchedule.all().factors(1));
    }

    @Test
    void overflowingSumsAreReportedNotReturned() {
        LayerSchedule huge = LayerSchedule.parse("1:1e308,1:1e308");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> huge.factors(5));
        assertTrue(e.getMessage().contains("layer 1"), e.getMessage());
    }
}
