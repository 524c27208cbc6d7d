"""Face analysis: landmarks, blendshapes and pose with mediapipe's FaceLandmarker."""
