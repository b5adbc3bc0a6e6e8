"""HDF5 fixtures written by make_h5_fixtures.py (real h5py files, zlib + base64). Do not edit."""

FIXTURES = {
    "reordered_lambda": (
        "eNrtWc9PE0EUfrsFs2mAlEgoNoqbPXkgBIwmhAsQqfZAxIiHJsaUlQ60YbuVbgsS0+gR/hOPHj169M/x6A1ndt5rd0YbCZpo"
        "wvuS5u37MW+mu99M02/PK5uPJ/OlPCh4HoxBAbK4QDTmTZ/yu2gdtGdoP7oUH09zcxgvYH8/p/0Gxl88L5dV9YUFmufTrLYe"
        "MK4jKuWNZ8pW0Sc+fXXNula7LqLaiWgeNLpJhpfrV5yX+Hp20+TrBFSQ31MwI1l5KDphUjsWnaTZjmX8luOkIwuDNXjGPrmh"
        "euaGe+fJo+0tB3CAVadwf3H54eISAH1dFwve5f1grx3vNw+CVV86fhCFp3IV0nspvTTkWyUqsN+L97pyqbXu6Rsh43JY63U9"
        "DBasPPVRsQcn5Q0FKvLjXhRlr/XlK+oRhy3dOkgD/QVcSxQmSY2SW3pelerncfBgZCLjapg1Zkcc9UTcbYayc998Xl+meK8w"
        "GAwGg8FgMBgMBuP/xTTpDOiTfjbUGSZTnUHrG/rvPFxCZ1A6AekMbhp3DD2O5p2b0f4K6my/0+M+lyAzG+O6wdbjSDWuzpp1"
        "dREnIsPHyh/Ou/N0e1MxmHj3DXU56m/zmPFrjDoHfAysly53DhTu8DnA58DPuvxuyaw7FJ1YRKtLQ/4hz/7SOfC9aPa1ecwY"
        "dQ7o93N04xy4py2+YBi8bxhhc/KJq8pp/y6M6TsPRQ+K7zE/Lp+QyruubughQ3JOdd785SC8/af3w+YV3GaOXA0f1rKfH5eO"
        "vds="
    ),
    "userblock_lambda": (
        "eNpjYGRiZmFlY+fg5OLm4eXjFxAUEhYRFROXkJSSlpGVk1dQVFJWUVVT19DU0tbR1dM3MDQyNjE1M7ewtLK2sbWzd3B0cnZx"
        "dXP38PTy9vH18w8IDAoOCQ0Lj4iMio6JjYtPSExKTklNS8/IzMrOyc3LLygsKi4pLSuvqKyqrqmtq29obGpuaW1r7+js6u7p"
        "7eufMHHS5ClTp02fMXPW7Dlz581fsHDR4iVLly1fsXLV6jVr163fsHHT5i1bt23fsXPX7j179+0/cPDQ4SNHjx0/cfLU6TNn"
        "z52/cPHS5StXr12/cfPW7Tt3791/8PDR4ydPnz1/8fLV6zdv373/8PHT5y9fv33/8fPX7z9///1nGOH+7/RwcePlkuJiAAEO"
        "DgYWBgEwk4EJQv2HggwFVD4DFCRAaUYo3QGlVzDBxFnBchJQcQGo+QrMEH4GVDwkyNUVpPo/GoDZs0EMQnMwjIKRCDxcHQNA"
        "dASUD0tPJ5hQ1eXmp6TmxJenZqZnlBQjpUsHMu2FpdcOYdT0ysPgAU3ffAwiwFSZnVqUWBxfllpUnJmfBxSXZGQE6xSAu4ED"
        "JZ+wgcxkRuQdd2d/H0YGqAY0dSBgpGdoqmcAz5YMTFAF1VwKSsn5eWmZ6UpWCkCOglJOYiXQFUBeNJAHFlJAUwISSCvNSy4B"
        "OjW+pLIgFSgO1JablJKopIMmDzMHJGZS7uoIAjBFCnmlOTnIbAgzFmZGXmIuxGglsECtDtQtOYnFxfEwSR+IvSCpWi6oZrjO"
        "YqA4SBuanuDUwtLUvJLMRKDJtajxdYBvNK+MglEwCkbBKBgFo2AUjIJRMApGwSgYvEAQNs4A5cPGzxDjDLzgcQbI+AakO89A"
        "xDgDaJwANs7ABBZnRBmPg9krIQLhW0DH2QiNx+2QYkCybRSMNIA+HgcdtmKIEENVl5KaV5yKlB49KLQ32M/fBZSCYenuA3Rc"
        "DmY+ejoeBdgBrnJAASrgIEVcOSAgO1oOjJYDmOPyCVKo6rJTi/JSc6wMEOkPms6oVA78EEc1Fz0djwJc5QBkfg4WcIwMGhAa"
        "OsEAn2/AQTMDYxykUlBBnoEFEvIM4hwM4vVQeVZgDIHkmZggBnJAUwgzY4Qcas0BAxUDGh7o6YpBZjSNkAca7JExAFKZvO4="
    ),
    "bytes_lambda": (
        "eNrtWc9PE0EUfrsFs2mElEgoNoqbPXkgBIwmhAsQqfZAxIiHJsaUlQ60YbuVbgsS0+gR/xOPHj1y5M/x6A1ndt5rd0arBk00"
        "4X1J8/b9mDfT3W+m6bcfKhuPJvKlPCh4HoxBAbK4QDTmTJ/yO2gdtKdoP7oUH09zsxgvYH8/p/0Gxp8/K5dV9YUFmufTjLYe"
        "MK4iKuX1p8pW0Sc+nbtmXatdF1HtWDT3G90kw8u1S85LfD29YfL1OlSQ35MwLVl5IDphUjsSnaTZjmX8puOkIwuDNXjGPrmm"
        "euaGe+fxw61NB3CAVadwb2HpwcIiAH1dFwve5v1gtx3vNfeDFV86fhCFJ3IV0nshvTTkWyUqsNeLd7tyqbXuyWsh43JY61U9"
        "DOatPPVRsfvH5XUFKvLjXhRlr/XlS+oRhy3dOkgD/XlcSxQmSY2Sm3pelerncfBgZCLjapg1Zlsc9kTcbYayc998XmeTvFcY"
        "DAaDwWAwGAwGg/H/Yop0BvRJPxvqDBOpzqD1Df13HlKdAX6qMyidgHQGN407hh5H885Oa38ZdbZf6XGfS5CZjXHVYOtxpBpX"
        "Z8y6uogTkeFj5Q/n3X6ytaEYTLz7groc9bd5zPgxRp0DPgbWSr93DhRu8znA58D3uvxOyaw7EJ1YRCuLQ/4hz/7SOfC1aPa1"
        "ecwYdQ7o93N04xy4qy2+YBi8bxhhc/KJq8op/w6M6TsPRQ+K7zA/Lp+QyruubughQ3JOdc785SC8+af3w+YV3GKOXA7vV7Of"
        "b4zovdo="
    ),
    "dense_attrs_lambda": (
        "eNrtWV9IU1EY/87u1NvUmH82zcDGzPBBZPNf5kOmzTVhpTl7UhvLXXW03dnu1EmNpCCqh15EokCqh3rqITDQiP6A9SRE0FNR"
        "BEWRL/XQH6IgO+fee7a7oSR0H3w4PxjfOd/5vt/37Z5/l+9e8LjchaYKE8fzQLGqor9S6TtU/UrEb+z2uHoNkDAZAAFYisEI"
        "kF+iDM+p0lCsJaHILQfsUhiJBoWwf1IIjYzGpXmzyrwLNohG70DkwP5uLyId1RupY7mqrK9zNtXhnA1q36AanDTZ7ENRcTg0"
        "Ym+14Y7NHg5MCTEJ9/pxT1bZskyIYnhcHIqHoqI/PjUmYD12ixwLBuy1WeOUh+gaJzvbCaiRTRwPh7VtpTlIOcRARKG2y4pk"
        "rZpLOCBJfjroVeKSoaRJdU55SlhP3LJ8fMKJcUGMhwKYOZn5LB9vBQYGBgYGBgYGBgYGBgaGTQu1BLF2mUEpTOSaSVkgJyiI"
        "ktBcpPq59AnvXon1bSSFEpICf1yIiUK41XGPZtGuQwoPft2OySkgQGgngMGAUKrasY7kSgEV2XaQgg2GDcp4KDuNWzk4W87E"
        "43/CIYtVsaVlGbi++VfD6zN2zu3zdcKSWn5CBwHmObnl4WBR/r8f64Jd/57YXk8P8PIjM6e1dFZD+UqfhknZ8Jlyo0UVI6hT"
        "AbSCVYNldSXVDFjEWx19HhfmxVNIVk+wxlJKY9AoW548uuL2YSuY5dae93S8HkjgGDTa02JFXw2Z8kPL9tGOPq8bxx0hCR4m"
        "jwDA+XuhACRC2qMoEr7ZAMxAWpE3u3gKhri04ut3axKOEIu9iuKT8do0WDWkRjR2EZY0pIM3nl2CBpRWHGr9cxeqNBY5r5oX"
        "oEQTZfXhuftwVuPiOF+1BO81iS1f/vkG5JXdpii+mL59hhcal4mjL3+Iy1ffsrOVYrpN+3N7XB2pMq+8bJ/Xdt7h8BIpALwk"
        "hUQ8FnA6wMzTXbAP8ImEjBoHLVD20ZSSGYTO/yZkYGDQ4ZUnY/8TlN80OTl8C5WSvYjfcQKSf0KISaGoCNsQku9Gc2pjyjeY"
        "/HlmXrNhOShU3JVPQspnl3W9yUecec025yBPc1bocfZo+Zw689XrzNegM1+jznxNOvM168y3W2e+Fp359myuq8/t6cra/9UV"
        "qrRmviVTNL2bmfsLIWlRIw=="
    ),
    "reordered_dense": (
        "eNrtmc9LG0EUx99utCyhaqSSaPDHsicPRWKlULyomGgOoqIeAqXERUezuG4wm7SKBD3q/+Af0GOP/RP8czx605mdN2Zn/Ykt"
        "ePB9IHm8HzOzmXx3krycl4sLPel8GgSWBV2QgTg3SG1U91V+E62B9gztb1PFu6PcIMYzOL+dkn4N4xtrpZKovkmg1vmTldYC"
        "4j1SLs2tCltBX+np0tTr9uvbzK/+Yt5urRnGdDn7ynWVXs8+6Xr9CGXUdy8McFXusYYbVn+yRujVAx4fMoxoZObuGiztPvkg"
        "5kx17p3F+ZUlA3BAok7wZWLy60QBQL3cC7THadvZqgc73q4zbXPHdnz3iF8F975zLwrZiRIRaAVeUxRNRX77M5b5bhhWA3ef"
        "8ZRTZEHIHJFp86cfosZRuZDHxajEkHV20GJB03N9J92O7+N4H2mYIAiCIAiCIAiCIPpVnwF91T/r9Bl6oj6D7G/In/Pwgj7D"
        "RazPYEZxQ+vHqXUHB6T/Dftsz/Xj/uYhthrx3kj241TXuJLV67ZFDymmx/I/rru+vFIUCla6u8K+nJo/qWPiYR47B2wMzOZf"
        "dg5kRugcoHPgfl9+M6/X7bFGwPzpQkd/qLP/dA5c5/R5kzomHjsH5P9zauMMGJfWNO6+MzxlU/wdF5X99hh0yZ2HnAW5E8x3"
        "83dI5E1TTmihQlJGZVT/5FAcvul+JHUFw6SR13E6E3/cAnu+pbg="
    ),
    "dense_attrs_dense": (
        "eNrtWU1oE0EUfpNN2zVtNf1LtUINWys9lJL0z9qD1ZrGCNXWpp7aGkKztsFkq9m0RjRYFEQ9eClFlBb14smDUKEVUQ/VU0EE"
        "T4oiKIq96MEfRME6s7uTTEKLBfdQcD5I3s6b9773NvO3eXvR5/EW2ipsgigCxZKBvkq97TL0i9GAtcvn6bFAwmYBBFBWDFaA"
        "/BK9e9qQlmKWhCJ3I2CXwuhISI4ETsjhoeG4OmM3mLfBKtHY2R/du6erE5GG4Y2MvlxD1te5m+pwzhajPWXIUzanNDiiHAkP"
        "Sa1O3HBKkeBJOabiVh9uaSpnlglRjCrhODFq0NrJWsMsElTVgBKMyrhL8siKKkukJ4m/BoiNRPtUrCdeWS5++fiorMTDwYhk"
        "S7L3WLMBODg4ODg4ODg4ODg4ODj+exgliOXLDHphItdOygI5IfKvvLnI8POYE967GOtdTQolJAXxqBxT5Eir6x7NYrcJKTz4"
        "eTumpYAAoa0AFgtCtNqxkhRKARU5t5CCDYYTykUoP4OvcnC2gk3EdyKgModuS8sycGPtz4ZXZyXB6/d3wLxRfkL7AWYE7con"
        "wJx2vx/qQvv+PrA9vm4QtZ/MntbSUQ3n620aJmUjZsr1q8zbCsZQAK1g1WBZXUk1/WXKrfZenwfz4iEksydUU1ZKY9Ao6x4/"
        "uur1YyuYFJYf93S8bkjgGDTak2JdXw2Z8n3L5uH23k4vjjtEEjxIfgIA96/ZAlAJabeuSPgngzABaUXe5NxpGBTSii/fHEk4"
        "RCx26oqP1uvj4GBIrejYJZhnSAduPr0MDSitOND6+y5UMRY5L5tnoYSJsvTw/H04x7i4LlTNwzsmsYUrP16DNrPbdMVn29dP"
        "8JxxGTv84ruycO0N31spxtvYj9fnaU+VebVp+6y2446Ap0gB4CkpJ+KxoNsFdpGugl2AdyRkZRxYoOytKSUzCN3/TMjBwWHC"
        "I0/G+ifIH2wbFfApVErWIn7GCaqBMTmmhkcU2ISQdjbaUwtTO8G01zMzzIIVoFB3118J6a9dVvSeYrwtmnces1eYsfewfG6T"
        "+epN5mswma/RZL4mk/maTebbbjJfi8l8O9bW0ef17cta/9UVhnRkPiVTNL2dmP4Dzhk5Kg=="
    ),
}
