"""Arena and instructions per inference of int8 models in the real TFLite Micro on emulated
Cortex-M cores: what `keras_tflite.board` was fitted on and is checked against.

Provenance.
- FIELD_NOTES: the table in shared/FIELD_NOTES.md, "The real TFLite Micro library on this
  project's exports" (2026-11-29): five models of the seed data. Its arena column includes the
  16-byte alignment margin an application adds.
- WHOLE_MODELS and SINGLE_OPS: measured 2026-11-30 on this project's machine with the same
  sources: tensorflow/tflite-micro 90b983c (2026-08-20) and ARM-software/CMSIS-NN (2026-07-15),
  built with Debian's arm-none-eabi-gcc 12.2 (TFLite Micro's cortex_m_generic target, -Os core,
  -O2 kernels) and run bare-metal in qemu-system-arm 7.2 (mps2-an386 Cortex-M4, mps2-an385
  Cortex-M3, mps3-an547 Cortex-M55) with semihosting. `arena` is
  `MicroInterpreter::arena_used_bytes()` after AllocateTensors and one Invoke; `instructions`
  are guest instructions per Invoke counted by a QEMU TCG plugin ((three invokes - one) / 2).
  The models are those `build(name)` makes, converted by `keras_tflite.convert`. That build is
  not part of the project: its sources are in no package registry.
"""

from __future__ import annotations

import numpy as np

FIELD_NOTES = {  # name: arena by target, instructions by core (None: not measured)
    "LSTM16": {
        "arena": {
            "cortex-m4/reference": 4068,
            "cortex-m4/cmsis_nn": 4804,
            "cortex-m55/cmsis_nn": 4820,
        },
        "instructions": {
            "cortex-m4/reference": 3.40e6,
            "cortex-m4/cmsis_nn": 1.56e6,
            "cortex-m3/cmsis_nn": 1.68e6,
            "cortex-m55/cmsis_nn": 0.80e6,
        },
    },
    "BiLSTM8": {
        "arena": {
            "cortex-m4/reference": 5060,
            "cortex-m4/cmsis_nn": 6084,
            "cortex-m55/cmsis_nn": 6164,
        },
        "instructions": {
            "cortex-m4/reference": 3.25e6,
            "cortex-m4/cmsis_nn": 1.64e6,
            "cortex-m3/cmsis_nn": 1.75e6,
            "cortex-m55/cmsis_nn": 1.02e6,
        },
    },
    "Conv1D": {
        "arena": {
            "cortex-m4/reference": 2772,
            "cortex-m4/cmsis_nn": 2836,
            "cortex-m55/cmsis_nn": 2852,
        },
        "instructions": {
            "cortex-m4/reference": 2.85e6,
            "cortex-m4/cmsis_nn": 0.22e6,
            "cortex-m3/cmsis_nn": 0.25e6,
            "cortex-m55/cmsis_nn": 0.10e6,
        },
    },
    "LSTM64": {
        "arena": {
            "cortex-m4/reference": 10356,
            "cortex-m4/cmsis_nn": 12532,
            "cortex-m55/cmsis_nn": 12548,
        },
        "instructions": {
            "cortex-m4/reference": 27.0e6,
            "cortex-m4/cmsis_nn": 8.38e6,
            "cortex-m55/cmsis_nn": 3.25e6,
        },
    },
}
# The table's fifth model, "the digits CNN of examples/classify_digits.py", is not the one that
# example builds today: rebuilt, it measures 2,452 bytes on a Cortex-M4 (reference kernels)
# where the table says 2,596, and 1.55 M instructions where it says 1.62 M. WHOLE_MODELS has
# today's ("digits").

WHOLE_MODELS = {
    "BiLSTM8": {
        "arena": {
            "cortex-m3/cmsis_nn": 6068,
            "cortex-m4/cmsis_nn": 6068,
            "cortex-m4/reference": 5044,
            "cortex-m55/cmsis_nn": 6148,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 1742810,
            "cortex-m4/cmsis_nn": 1634710,
            "cortex-m4/reference": 3237634,
            "cortex-m55/cmsis_nn": 1010961,
        },
    },
    "Conv1D": {
        "arena": {
            "cortex-m3/cmsis_nn": 2820,
            "cortex-m4/cmsis_nn": 2820,
            "cortex-m4/reference": 2756,
            "cortex-m55/cmsis_nn": 2836,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 248293,
            "cortex-m4/cmsis_nn": 222235,
            "cortex-m4/reference": 2849244,
            "cortex-m55/cmsis_nn": 95644,
        },
    },
    "Conv1D32": {
        "arena": {
            "cortex-m3/cmsis_nn": 3860,
            "cortex-m4/cmsis_nn": 3860,
            "cortex-m4/reference": 3796,
            "cortex-m55/cmsis_nn": 3908,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 340241,
            "cortex-m4/cmsis_nn": 278542,
            "cortex-m4/reference": 5945101,
            "cortex-m55/cmsis_nn": 67786,
        },
    },
    "Conv1DBN": {
        "arena": {
            "cortex-m3/cmsis_nn": 2868,
            "cortex-m4/cmsis_nn": 2868,
            "cortex-m4/reference": 2820,
            "cortex-m55/cmsis_nn": 2884,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 211072,
            "cortex-m4/cmsis_nn": 206471,
            "cortex-m4/reference": 1328986,
            "cortex-m55/cmsis_nn": 138119,
        },
    },
    "GRU16": {
        "arena": {
            "cortex-m3/cmsis_nn": 6388,
            "cortex-m4/cmsis_nn": 6388,
            "cortex-m4/reference": 6228,
            "cortex-m55/cmsis_nn": 6788,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 4783227,
            "cortex-m4/cmsis_nn": 4759773,
            "cortex-m4/reference": 5016896,
            "cortex-m55/cmsis_nn": 2226051,
        },
    },
    "LSTM16": {
        "arena": {
            "cortex-m3/cmsis_nn": 4788,
            "cortex-m4/cmsis_nn": 4788,
            "cortex-m4/reference": 4052,
            "cortex-m55/cmsis_nn": 4804,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 1678718,
            "cortex-m4/cmsis_nn": 1553157,
            "cortex-m4/reference": 3399830,
            "cortex-m55/cmsis_nn": 797407,
        },
    },
    "LSTM32_48": {
        "arena": {
            "cortex-m3/cmsis_nn": 4836,
            "cortex-m4/cmsis_nn": 4836,
            "cortex-m4/reference": 3620,
            "cortex-m55/cmsis_nn": 4852,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 1553663,
            "cortex-m4/cmsis_nn": 1342116,
            "cortex-m4/reference": 3522650,
            "cortex-m55/cmsis_nn": 599630,
        },
    },
    "LSTM64": {
        "arena": {
            "cortex-m3/cmsis_nn": 12516,
            "cortex-m4/cmsis_nn": 12516,
            "cortex-m4/reference": 10340,
            "cortex-m55/cmsis_nn": 12532,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 10449660,
            "cortex-m4/cmsis_nn": 8380246,
            "cortex-m4/reference": 26980582,
            "cortex-m55/cmsis_nn": 3250456,
        },
    },
    "MLP": {
        "arena": {
            "cortex-m3/cmsis_nn": 980,
            "cortex-m4/cmsis_nn": 980,
            "cortex-m4/reference": 900,
            "cortex-m55/cmsis_nn": 1124,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 4039,
            "cortex-m4/cmsis_nn": 3909,
            "cortex-m4/reference": 5091,
            "cortex-m55/cmsis_nn": 2374,
        },
    },
    "digits": {
        "arena": {
            "cortex-m3/cmsis_nn": 2532,
            "cortex-m4/cmsis_nn": 2532,
            "cortex-m4/reference": 2452,
            "cortex-m55/cmsis_nn": 2580,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 220514,
            "cortex-m4/cmsis_nn": 201421,
            "cortex-m4/reference": 1550228,
            "cortex-m55/cmsis_nn": 115890,
        },
    },
    "digitsflat": {
        "arena": {
            "cortex-m3/cmsis_nn": 1476,
            "cortex-m4/cmsis_nn": 1476,
            "cortex-m4/reference": 1396,
            "cortex-m55/cmsis_nn": 1540,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 51647,
            "cortex-m4/cmsis_nn": 49709,
            "cortex-m4/reference": 334836,
            "cortex-m55/cmsis_nn": 26013,
        },
    },
    "dwconv": {
        "arena": {
            "cortex-m3/cmsis_nn": 9924,
            "cortex-m4/cmsis_nn": 9924,
            "cortex-m4/reference": 9860,
            "cortex-m55/cmsis_nn": 12596,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 1510070,
            "cortex-m4/cmsis_nn": 1250768,
            "cortex-m4/reference": 17708888,
            "cortex-m55/cmsis_nn": 521233,
        },
    },
    "emb": {
        "arena": {
            "cortex-m3/cmsis_nn": 3188,
            "cortex-m4/cmsis_nn": 3188,
            "cortex-m4/reference": 2452,
            "cortex-m55/cmsis_nn": 3204,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 299579,
            "cortex-m4/cmsis_nn": 269644,
            "cortex-m4/reference": 635758,
            "cortex-m55/cmsis_nn": 136232,
        },
    },
    "stacked16_8": {
        "arena": {
            "cortex-m3/cmsis_nn": 6836,
            "cortex-m4/cmsis_nn": 6836,
            "cortex-m4/reference": 5604,
            "cortex-m55/cmsis_nn": 6852,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 2720206,
            "cortex-m4/cmsis_nn": 2454941,
            "cortex-m4/reference": 5517649,
            "cortex-m55/cmsis_nn": 1298701,
        },
    },
}
SINGLE_OPS = {
    "add_1024": {
        "arena": {
            "cortex-m3/cmsis_nn": 3620,
            "cortex-m4/cmsis_nn": 3620,
            "cortex-m4/reference": 3620,
            "cortex-m55/cmsis_nn": 3620,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 108359,
            "cortex-m4/cmsis_nn": 103705,
            "cortex-m4/reference": 104811,
            "cortex-m55/cmsis_nn": 36444,
        },
    },
    "avgpool_16x16x8": {
        "arena": {
            "cortex-m3/cmsis_nn": 2964,
            "cortex-m4/cmsis_nn": 2996,
            "cortex-m4/reference": 2964,
            "cortex-m55/cmsis_nn": 2964,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 72976,
            "cortex-m4/cmsis_nn": 48657,
            "cortex-m4/reference": 123218,
            "cortex-m55/cmsis_nn": 42577,
        },
    },
    "concat_2x512": {
        "arena": {
            "cortex-m3/cmsis_nn": 2468,
            "cortex-m4/cmsis_nn": 2468,
            "cortex-m4/reference": 2468,
            "cortex-m55/cmsis_nn": 2468,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 11966,
            "cortex-m4/cmsis_nn": 11928,
            "cortex-m4/reference": 1355,
            "cortex-m55/cmsis_nn": 11959,
        },
    },
    "conv_16x16x16_f32k1": {
        "arena": {
            "cortex-m3/cmsis_nn": 12980,
            "cortex-m4/cmsis_nn": 12980,
            "cortex-m4/reference": 12980,
            "cortex-m55/cmsis_nn": 12980,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 671926,
            "cortex-m4/cmsis_nn": 552343,
            "cortex-m4/reference": 10167112,
            "cortex-m55/cmsis_nn": 181614,
        },
    },
    "conv_16x16x8_f16k3": {
        "arena": {
            "cortex-m3/cmsis_nn": 6996,
            "cortex-m4/cmsis_nn": 6996,
            "cortex-m4/reference": 6708,
            "cortex-m55/cmsis_nn": 7028,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 1154667,
            "cortex-m4/cmsis_nn": 869270,
            "cortex-m4/reference": 20177224,
            "cortex-m55/cmsis_nn": 211808,
        },
    },
    "conv_1x120x3_f16k5s2": {
        "arena": {
            "cortex-m3/cmsis_nn": 1924,
            "cortex-m4/cmsis_nn": 1924,
            "cortex-m4/reference": 1860,
            "cortex-m55/cmsis_nn": 1924,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 99611,
            "cortex-m4/cmsis_nn": 93279,
            "cortex-m4/reference": 1216099,
            "cortex-m55/cmsis_nn": 31448,
        },
    },
    "conv_1x29x16_f16k3": {
        "arena": {
            "cortex-m3/cmsis_nn": 1652,
            "cortex-m4/cmsis_nn": 1652,
            "cortex-m4/reference": 1460,
            "cortex-m55/cmsis_nn": 1508,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 90512,
            "cortex-m4/cmsis_nn": 70133,
            "cortex-m4/reference": 1510409,
            "cortex-m55/cmsis_nn": 16531,
        },
    },
    "conv_1x60x32_f32k3": {
        "arena": {
            "cortex-m3/cmsis_nn": 4852,
            "cortex-m4/cmsis_nn": 4852,
            "cortex-m4/reference": 4468,
            "cortex-m55/cmsis_nn": 4564,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 586786,
            "cortex-m4/cmsis_nn": 424376,
            "cortex-m4/reference": 12542529,
            "cortex-m55/cmsis_nn": 79164,
        },
    },
    "conv_1x64x3_f16k5": {
        "arena": {
            "cortex-m3/cmsis_nn": 1780,
            "cortex-m4/cmsis_nn": 1780,
            "cortex-m4/reference": 1716,
            "cortex-m55/cmsis_nn": 1780,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 101180,
            "cortex-m4/cmsis_nn": 94630,
            "cortex-m4/reference": 1254062,
            "cortex-m55/cmsis_nn": 30150,
        },
    },
    "conv_32x32x3_f16k3s2": {
        "arena": {
            "cortex-m3/cmsis_nn": 7348,
            "cortex-m4/cmsis_nn": 7348,
            "cortex-m4/reference": 7236,
            "cortex-m55/cmsis_nn": 7364,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 566808,
            "cortex-m4/cmsis_nn": 496117,
            "cortex-m4/reference": 8252812,
            "cortex-m55/cmsis_nn": 169907,
        },
    },
    "conv_4x4x8_f16k3same": {
        "arena": {
            "cortex-m3/cmsis_nn": 1236,
            "cortex-m4/cmsis_nn": 1236,
            "cortex-m4/reference": 948,
            "cortex-m55/cmsis_nn": 1268,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 73227,
            "cortex-m4/cmsis_nn": 55346,
            "cortex-m4/reference": 969563,
            "cortex-m55/cmsis_nn": 14084,
        },
    },
    "conv_8x8x1_f8k3": {
        "arena": {
            "cortex-m3/cmsis_nn": 1124,
            "cortex-m4/cmsis_nn": 1124,
            "cortex-m4/reference": 1076,
            "cortex-m55/cmsis_nn": 1140,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 67354,
            "cortex-m4/cmsis_nn": 65837,
            "cortex-m4/reference": 475456,
            "cortex-m55/cmsis_nn": 29332,
        },
    },
    "dw_16x16x8_k3": {
        "arena": {
            "cortex-m3/cmsis_nn": 4596,
            "cortex-m4/cmsis_nn": 4596,
            "cortex-m4/reference": 4596,
            "cortex-m55/cmsis_nn": 9060,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 210496,
            "cortex-m4/cmsis_nn": 179901,
            "cortex-m4/reference": 1654433,
            "cortex-m55/cmsis_nn": 121257,
        },
    },
    "dw_8x8x16_k5": {
        "arena": {
            "cortex-m3/cmsis_nn": 2612,
            "cortex-m4/cmsis_nn": 3412,
            "cortex-m4/reference": 2612,
            "cortex-m55/cmsis_nn": 15012,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 467216,
            "cortex-m4/cmsis_nn": 288506,
            "cortex-m4/reference": 1648379,
            "cortex-m55/cmsis_nn": 79433,
        },
    },
    "fc_16x16": {
        "arena": {
            "cortex-m3/cmsis_nn": 580,
            "cortex-m4/cmsis_nn": 580,
            "cortex-m4/reference": 548,
            "cortex-m55/cmsis_nn": 644,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 2536,
            "cortex-m4/cmsis_nn": 2317,
            "cortex-m4/reference": 2990,
            "cortex-m55/cmsis_nn": 1320,
        },
    },
    "fc_16x256": {
        "arena": {
            "cortex-m3/cmsis_nn": 2740,
            "cortex-m4/cmsis_nn": 2740,
            "cortex-m4/reference": 2708,
            "cortex-m55/cmsis_nn": 3764,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 25816,
            "cortex-m4/cmsis_nn": 23317,
            "cortex-m4/reference": 40049,
            "cortex-m55/cmsis_nn": 6960,
        },
    },
    "fc_256x32": {
        "arena": {
            "cortex-m3/cmsis_nn": 964,
            "cortex-m4/cmsis_nn": 964,
            "cortex-m4/reference": 932,
            "cortex-m55/cmsis_nn": 1092,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 33418,
            "cortex-m4/cmsis_nn": 20517,
            "cortex-m4/reference": 51549,
            "cortex-m55/cmsis_nn": 7696,
        },
    },
    "fc_3x16": {
        "arena": {
            "cortex-m3/cmsis_nn": 580,
            "cortex-m4/cmsis_nn": 580,
            "cortex-m4/reference": 548,
            "cortex-m55/cmsis_nn": 644,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 1678,
            "cortex-m4/cmsis_nn": 1835,
            "cortex-m4/reference": 1964,
            "cortex-m55/cmsis_nn": 1190,
        },
    },
    "fc_512x64_relu": {
        "arena": {
            "cortex-m3/cmsis_nn": 1508,
            "cortex-m4/cmsis_nn": 1508,
            "cortex-m4/reference": 1476,
            "cortex-m55/cmsis_nn": 1764,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 119288,
            "cortex-m4/cmsis_nn": 70997,
            "cortex-m4/reference": 206175,
            "cortex-m55/cmsis_nn": 22288,
        },
    },
    "fc_64x64": {
        "arena": {
            "cortex-m3/cmsis_nn": 1060,
            "cortex-m4/cmsis_nn": 1060,
            "cortex-m4/reference": 1028,
            "cortex-m55/cmsis_nn": 1316,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 18040,
            "cortex-m4/cmsis_nn": 12757,
            "cortex-m4/reference": 28873,
            "cortex-m55/cmsis_nn": 4368,
        },
    },
    "fc_8x1": {
        "arena": {
            "cortex-m3/cmsis_nn": 452,
            "cortex-m4/cmsis_nn": 452,
            "cortex-m4/reference": 420,
            "cortex-m55/cmsis_nn": 468,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 906,
            "cortex-m4/cmsis_nn": 873,
            "cortex-m4/reference": 917,
            "cortex-m55/cmsis_nn": 885,
        },
    },
    "logistic_1024": {
        "arena": {
            "cortex-m3/cmsis_nn": 2388,
            "cortex-m4/cmsis_nn": 2388,
            "cortex-m4/reference": 2388,
            "cortex-m55/cmsis_nn": 2388,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 385462,
            "cortex-m4/cmsis_nn": 385989,
            "cortex-m4/reference": 375550,
            "cortex-m55/cmsis_nn": 398178,
        },
    },
    "lstm_20x16_u32": {
        "arena": {
            "cortex-m3/cmsis_nn": 3972,
            "cortex-m4/cmsis_nn": 3972,
            "cortex-m4/reference": 2788,
            "cortex-m55/cmsis_nn": 3972,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 745299,
            "cortex-m4/cmsis_nn": 614773,
            "cortex-m4/reference": 1802061,
            "cortex-m55/cmsis_nn": 252013,
        },
    },
    "lstm_20x3_u64": {
        "arena": {
            "cortex-m3/cmsis_nn": 5668,
            "cortex-m4/cmsis_nn": 5668,
            "cortex-m4/reference": 3524,
            "cortex-m55/cmsis_nn": 5668,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 1694661,
            "cortex-m4/cmsis_nn": 1364224,
            "cortex-m4/reference": 4499759,
            "cortex-m55/cmsis_nn": 534989,
        },
    },
    "lstm_20x3_u8": {
        "arena": {
            "cortex-m3/cmsis_nn": 2260,
            "cortex-m4/cmsis_nn": 2260,
            "cortex-m4/reference": 1796,
            "cortex-m55/cmsis_nn": 2260,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 145066,
            "cortex-m4/cmsis_nn": 136370,
            "cortex-m4/reference": 270562,
            "cortex-m55/cmsis_nn": 85384,
        },
    },
    "lstm_60x3_u8": {
        "arena": {
            "cortex-m3/cmsis_nn": 2708,
            "cortex-m4/cmsis_nn": 2708,
            "cortex-m4/reference": 2244,
            "cortex-m55/cmsis_nn": 2708,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 435689,
            "cortex-m4/cmsis_nn": 408778,
            "cortex-m4/reference": 808551,
            "cortex-m55/cmsis_nn": 253664,
        },
    },
    "maxpool_16x16x8": {
        "arena": {
            "cortex-m3/cmsis_nn": 2964,
            "cortex-m4/cmsis_nn": 2964,
            "cortex-m4/reference": 2964,
            "cortex-m55/cmsis_nn": 2964,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 47877,
            "cortex-m4/cmsis_nn": 47786,
            "cortex-m4/reference": 126246,
            "cortex-m55/cmsis_nn": 32504,
        },
    },
    "maxpool_1x58x16": {
        "arena": {
            "cortex-m3/cmsis_nn": 1796,
            "cortex-m4/cmsis_nn": 1796,
            "cortex-m4/reference": 1796,
            "cortex-m55/cmsis_nn": 1796,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 21289,
            "cortex-m4/cmsis_nn": 21189,
            "cortex-m4/reference": 85841,
            "cortex-m55/cmsis_nn": 13064,
        },
    },
    "mean1d_120x32": {
        "arena": {
            "cortex-m3/cmsis_nn": 4420,
            "cortex-m4/cmsis_nn": 4420,
            "cortex-m4/reference": 4420,
            "cortex-m55/cmsis_nn": 4420,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 503098,
            "cortex-m4/cmsis_nn": 510771,
            "cortex-m4/reference": 510771,
            "cortex-m55/cmsis_nn": 483779,
        },
    },
    "mean1d_58x16": {
        "arena": {
            "cortex-m3/cmsis_nn": 1428,
            "cortex-m4/cmsis_nn": 1428,
            "cortex-m4/reference": 1428,
            "cortex-m55/cmsis_nn": 1428,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 123102,
            "cortex-m4/cmsis_nn": 124951,
            "cortex-m4/reference": 124951,
            "cortex-m55/cmsis_nn": 118396,
        },
    },
    "mean_16x16x8": {
        "arena": {
            "cortex-m3/cmsis_nn": 2516,
            "cortex-m4/cmsis_nn": 2516,
            "cortex-m4/reference": 2516,
            "cortex-m55/cmsis_nn": 2516,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 352761,
            "cortex-m4/cmsis_nn": 356850,
            "cortex-m4/reference": 336171,
            "cortex-m55/cmsis_nn": 329950,
        },
    },
    "mean_1x58x16": {
        "arena": {
            "cortex-m3/cmsis_nn": 1428,
            "cortex-m4/cmsis_nn": 1428,
            "cortex-m4/reference": 1428,
            "cortex-m55/cmsis_nn": 1428,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 160389,
            "cortex-m4/cmsis_nn": 162238,
            "cortex-m4/reference": 162238,
            "cortex-m55/cmsis_nn": 150114,
        },
    },
    "mean_4x4x16": {
        "arena": {
            "cortex-m3/cmsis_nn": 756,
            "cortex-m4/cmsis_nn": 756,
            "cortex-m4/reference": 756,
            "cortex-m55/cmsis_nn": 756,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 45720,
            "cortex-m4/cmsis_nn": 46225,
            "cortex-m4/reference": 46225,
            "cortex-m55/cmsis_nn": 42876,
        },
    },
    "mul_1024": {
        "arena": {
            "cortex-m3/cmsis_nn": 3492,
            "cortex-m4/cmsis_nn": 3492,
            "cortex-m4/reference": 3492,
            "cortex-m55/cmsis_nn": 3492,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 58467,
            "cortex-m4/cmsis_nn": 57850,
            "cortex-m4/reference": 52410,
            "cortex-m55/cmsis_nn": 28538,
        },
    },
    "reshape_1024": {
        "arena": {
            "cortex-m3/cmsis_nn": 2404,
            "cortex-m4/cmsis_nn": 2404,
            "cortex-m4/reference": 2404,
            "cortex-m55/cmsis_nn": 2404,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 11292,
            "cortex-m4/cmsis_nn": 11258,
            "cortex-m4/reference": 819,
            "cortex-m55/cmsis_nn": 11292,
        },
    },
    "reshape_928": {
        "arena": {
            "cortex-m3/cmsis_nn": 2212,
            "cortex-m4/cmsis_nn": 2212,
            "cortex-m4/reference": 2212,
            "cortex-m55/cmsis_nn": 2212,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 10290,
            "cortex-m4/cmsis_nn": 10256,
            "cortex-m4/reference": 10256,
            "cortex-m55/cmsis_nn": 10289,
        },
    },
    "slice_64x16": {
        "arena": {
            "cortex-m3/cmsis_nn": 2132,
            "cortex-m4/cmsis_nn": 2132,
            "cortex-m4/reference": 2132,
            "cortex-m55/cmsis_nn": 2132,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 13849,
            "cortex-m4/cmsis_nn": 13763,
            "cortex-m4/reference": 3324,
            "cortex-m55/cmsis_nn": 13873,
        },
    },
    "softmax_10": {
        "arena": {
            "cortex-m3/cmsis_nn": 420,
            "cortex-m4/cmsis_nn": 420,
            "cortex-m4/reference": 420,
            "cortex-m55/cmsis_nn": 420,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 5885,
            "cortex-m4/cmsis_nn": 5897,
            "cortex-m4/reference": 5093,
            "cortex-m55/cmsis_nn": 6300,
        },
    },
    "softmax_4x256": {
        "arena": {
            "cortex-m3/cmsis_nn": 2436,
            "cortex-m4/cmsis_nn": 2436,
            "cortex-m4/reference": 2436,
            "cortex-m55/cmsis_nn": 2436,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 543050,
            "cortex-m4/cmsis_nn": 544079,
            "cortex-m4/reference": 464023,
            "cortex-m55/cmsis_nn": 585042,
        },
    },
    "tanh_1024": {
        "arena": {
            "cortex-m3/cmsis_nn": 2388,
            "cortex-m4/cmsis_nn": 2388,
            "cortex-m4/reference": 2388,
            "cortex-m55/cmsis_nn": 2388,
        },
        "instructions": {
            "cortex-m3/cmsis_nn": 392470,
            "cortex-m4/cmsis_nn": 392468,
            "cortex-m4/reference": 382029,
            "cortex-m55/cmsis_nn": 404864,
        },
    },
}


def build(name: str):
    """The model `name` as measured, and samples to calibrate it (random: the arena and the
    instruction count do not depend on the weights or the calibration)."""
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    shape, body, dtype = _ARCHITECTURES[name](layers)
    if isinstance(shape, list):
        inputs = [keras.Input(s) for s in shape]
        model = keras.Model(inputs, body(*inputs))
        return model, [rng.normal(size=(200, *s)).astype("float32") for s in shape]
    inputs = keras.Input(shape, dtype=dtype)
    model = keras.Model(inputs, body(inputs))
    if dtype == "int32":
        return model, rng.integers(0, 50, (200, *shape)).astype("int32")
    return model, rng.normal(size=(200, *shape)).astype("float32")


def _series(head):
    """A seed-data forecaster: a body over (steps, 3), then Dense(1)."""
    return lambda layers: (
        (120, 3),
        lambda x: layers.Dense(1)(head(layers)(x)),
        "float32",
    )


_ARCHITECTURES = {
    "LSTM16": _series(lambda L: L.LSTM(16)),
    "BiLSTM8": _series(lambda L: L.Bidirectional(L.LSTM(8))),
    "LSTM64": _series(lambda L: L.LSTM(64)),
    "Conv1D": _series(
        lambda L: (
            lambda x: L.GlobalAveragePooling1D()(
                L.Conv1D(16, 3)(L.MaxPooling1D(2)(L.Conv1D(16, 5, strides=2)(x)))
            )
        )
    ),
    "stacked16_8": _series(lambda L: lambda x: L.LSTM(8)(L.LSTM(16, return_sequences=True)(x))),
    "Conv1DBN": _series(
        lambda L: (
            lambda x: L.GlobalAveragePooling1D()(
                L.ReLU()(L.BatchNormalization()(L.Conv1D(16, 5, strides=2)(x)))
            )
        )
    ),
    "Conv1D32": _series(
        lambda L: (
            lambda x: L.Flatten()(
                L.Conv1D(32, 3, activation="relu")(
                    L.MaxPooling1D(4)(L.Conv1D(32, 7, strides=2, activation="relu")(x))
                )
            )
        )
    ),
    "GRU16": lambda L: ((48, 3), lambda x: L.Dense(1)(L.GRU(16)(x)), "float32"),
    "LSTM32_48": lambda L: ((48, 3), lambda x: L.Dense(1)(L.LSTM(32)(x)), "float32"),
    "MLP": lambda L: (
        (1,),
        lambda x: L.Dense(1)(L.Dense(16, activation="relu")(L.Dense(16, activation="relu")(x))),
        "float32",
    ),
    "digits": lambda L: (  # examples/classify_digits.py
        (8, 8, 1),
        lambda x: L.Dense(10, activation="softmax")(
            L.GlobalAveragePooling2D()(
                L.Conv2D(16, 3, padding="same", activation="relu")(
                    L.MaxPooling2D()(
                        L.BatchNormalization()(L.Conv2D(8, 3, padding="same", activation="relu")(x))
                    )
                )
            )
        ),
        "float32",
    ),
    "digitsflat": lambda L: (
        (8, 8, 1),
        lambda x: L.Dense(10, activation="softmax")(
            L.Flatten()(L.MaxPooling2D()(L.Conv2D(8, 3, activation="relu")(x)))
        ),
        "float32",
    ),
    "dwconv": lambda L: (
        (32, 32, 3),
        lambda x: L.Dense(4, activation="softmax")(
            L.GlobalAveragePooling2D()(
                L.AveragePooling2D(2)(
                    L.Conv2D(32, 1, activation="relu")(
                        L.DepthwiseConv2D(3, activation="relu")(
                            L.Conv2D(16, 3, strides=2, activation="relu")(x)
                        )
                    )
                )
            )
        ),
        "float32",
    ),
    "emb": lambda L: (
        (20,),
        lambda x: L.Dense(2, activation="softmax")(L.LSTM(16)(L.Embedding(50, 8)(x))),
        "int32",
    ),
}


def _op(shape, body):
    return lambda L: (shape, lambda *x: body(L)(*x), "float32")


_ARCHITECTURES |= {
    "fc_16x16": _op((16,), lambda L: L.Dense(16)),
    "fc_64x64": _op((64,), lambda L: L.Dense(64)),
    "fc_256x32": _op((256,), lambda L: L.Dense(32)),
    "fc_16x256": _op((16,), lambda L: L.Dense(256)),
    "fc_8x1": _op((8,), lambda L: L.Dense(1)),
    "fc_3x16": _op((3,), lambda L: L.Dense(16)),
    "fc_512x64_relu": _op((512,), lambda L: L.Dense(64, activation="relu")),
    "conv_8x8x1_f8k3": _op((8, 8, 1), lambda L: L.Conv2D(8, 3, padding="same")),
    "conv_16x16x8_f16k3": _op((16, 16, 8), lambda L: L.Conv2D(16, 3, padding="same")),
    "conv_16x16x16_f32k1": _op((16, 16, 16), lambda L: L.Conv2D(32, 1)),
    "conv_1x64x3_f16k5": _op((1, 64, 3), lambda L: L.Conv2D(16, (1, 5))),
    "conv_1x120x3_f16k5s2": _op((1, 120, 3), lambda L: L.Conv2D(16, (1, 5), strides=(1, 2))),
    "conv_1x29x16_f16k3": _op((1, 29, 16), lambda L: L.Conv2D(16, (1, 3))),
    "conv_1x60x32_f32k3": _op((1, 60, 32), lambda L: L.Conv2D(32, (1, 3), activation="relu")),
    "conv_4x4x8_f16k3same": _op((4, 4, 8), lambda L: L.Conv2D(16, 3, padding="same")),
    "conv_32x32x3_f16k3s2": _op((32, 32, 3), lambda L: L.Conv2D(16, 3, strides=2)),
    "dw_16x16x8_k3": _op((16, 16, 8), lambda L: L.DepthwiseConv2D(3, padding="same")),
    "dw_8x8x16_k5": _op((8, 8, 16), lambda L: L.DepthwiseConv2D(5, padding="same")),
    "lstm_20x3_u8": _op((20, 3), lambda L: L.LSTM(8)),
    "lstm_60x3_u8": _op((60, 3), lambda L: L.LSTM(8)),
    "lstm_20x16_u32": _op((20, 16), lambda L: L.LSTM(32)),
    "lstm_20x3_u64": _op((20, 3), lambda L: L.LSTM(64)),
    "logistic_1024": _op((1024,), lambda L: L.Activation("sigmoid")),
    "tanh_1024": _op((1024,), lambda L: L.Activation("tanh")),
    "softmax_10": _op((10,), lambda L: L.Activation("softmax")),
    "softmax_4x256": _op((4, 256), lambda L: L.Activation("softmax")),
    "maxpool_16x16x8": _op((16, 16, 8), lambda L: L.MaxPooling2D()),
    "maxpool_1x58x16": _op((1, 58, 16), lambda L: L.MaxPooling2D((1, 2))),
    "avgpool_16x16x8": _op((16, 16, 8), lambda L: L.AveragePooling2D(2)),
    "mean_16x16x8": _op((16, 16, 8), lambda L: L.GlobalAveragePooling2D()),
    "mean_1x58x16": _op((1, 58, 16), lambda L: L.GlobalAveragePooling2D()),
    "mean_4x4x16": _op((4, 4, 16), lambda L: L.GlobalAveragePooling2D()),
    "mean1d_58x16": _op((58, 16), lambda L: L.GlobalAveragePooling1D()),
    "mean1d_120x32": _op((120, 32), lambda L: L.GlobalAveragePooling1D()),
    "add_1024": lambda L: ([(1024,), (1024,)], lambda a, b: L.Add()([a, b]), "float32"),
    "mul_1024": lambda L: ([(1024,), (1024,)], lambda a, b: L.Multiply()([a, b]), "float32"),
    "concat_2x512": lambda L: ([(512,), (512,)], lambda a, b: L.Concatenate()([a, b]), "float32"),
    "reshape_1024": _op((32, 32), lambda L: L.Reshape((1024,))),
    "reshape_928": _op((1, 58, 16), lambda L: L.Reshape((58, 16))),
    "slice_64x16": _op((64, 16), lambda L: lambda x: x[:, 10:50, :]),
}


def device(name: str) -> dict:
    """`keras_tflite.board.device_report` of the model `name`, converted and run here."""
    import keras_tflite
    from keras_tflite.board import device_report

    model, data = build(name)
    result = keras_tflite.convert(model, data)
    micro = keras_tflite.MicroModel(result.tflite)
    micro.predict([np.asarray(d[:1]) for d in (data if isinstance(data, list) else [data])])
    return device_report(result.tflite, micro.allocations())
