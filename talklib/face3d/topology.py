"""Named vertex groups of mediapipe's face-mesh topology (468 mesh points + 10 iris points).

Index conventions are mediapipe's: "right" is the subject's right (image left in a frontal view).
Loops are ordered around each hole of the tessellation (eyes, mouth) and the face outline.
"""

N_MESH = 468
N_LANDMARKS = 478  # + irises: 468 right-iris centre, 469..472 its ring, 473 left-iris centre, 474..477

FACE_OVAL = (10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377,
             400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338)
RIGHT_EYE_LOOP = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE_LOOP = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
# upper lid (outer corner -> inner corner) and the lower-lid point each one closes onto
RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
RIGHT_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
LEFT_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
LEFT_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (263, 362)
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_LOOP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
MOUTH_CORNERS = (61, 291)
INNER_MOUTH_CORNERS = (78, 308)
CHIN = 152
FOREHEAD = 10
NOSE_TIP = 1

RIGHT_BROW_INNER = (107, 66, 55, 65)
RIGHT_BROW_OUTER = (70, 63, 46, 53)
LEFT_BROW_INNER = (336, 296, 285, 295)
LEFT_BROW_OUTER = (300, 293, 276, 283)
RIGHT_BROW_MID = (105, 52)
LEFT_BROW_MID = (334, 282)
RIGHT_CHEEK = (205, 50, 187)
LEFT_CHEEK = (425, 280, 411)

# the two spurious 3-cliques of FACEMESH_TESSELATION's edge graph (not faces of the mesh)
SPURIOUS_TRIANGLES = ((49, 64, 129), (279, 294, 358))

# 68 landmarks in the layout of FaceWarehouse / dlib (DFA-NeRF Sec. 3.2 selects 68 mesh points): jaw line 17
# (subject's right ear to left ear), brows 10, nose 9 (bridge 4, base 5), eyes 12 (6 per eye), lips 20
# (outer 12, inner 8), taken from the mediapipe mesh the morphable head shares.
LANDMARKS_68 = (127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356,
                70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
                168, 6, 197, 4, 98, 97, 2, 326, 327,
                33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
                61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178)
# positions in LANDMARKS_68 of the points the mouth moves (lips, the jaw line below the ears, the nose base:
# where the 3DMM's mouth components act) and of all the others (eyes, brows, nose bridge, the jaw's ends)
MOUTH_REGION_68 = tuple(list(range(2, 15)) + list(range(31, 36)) + list(range(48, 68)))
EYE_REGION_68 = tuple(i for i in range(68) if i not in MOUTH_REGION_68)
